"""identities at OpenID Connect providers linked to accounts

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 10:00:00.000000

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "users_provider_identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("issuer", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users_user.id"],
            name=op.f("fk_users_provider_identity_user_id_users_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users_provider_identity")),
        # One account per identity: the provider's (issuer, subject), never the email.
        sa.UniqueConstraint(
            "issuer", "subject", name=op.f("uq_users_provider_identity_issuer")
        ),
        # One identity per provider per account; also serves lookups by account.
        sa.UniqueConstraint(
            "user_id", "provider", name=op.f("uq_users_provider_identity_user_id")
        ),
    )


def downgrade():
    op.drop_table("users_provider_identity")
