"""accounts and the email outbox

Revision ID: 0001
Revises:
Create Date: 2026-11-24 21:52:53.269083

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "users_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("session_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("login_count", sa.Integer(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN (0, 1, 2)", name=op.f("ck_users_user_role")),
        sa.CheckConstraint("status IN (0, 1, 2)", name=op.f("ck_users_user_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users_user")),
    )
    with op.batch_alter_table("users_user", schema=None) as batch_op:
        batch_op.create_index("ix_users_user_created_at", ["created_at"], unique=False)
        # One account per address in any case; autogenerate cannot see expression indexes.
        batch_op.create_index(
            "uq_users_user_email_lower", [sa.text("lower(email)")], unique=True
        )
        batch_op.create_index(
            "ix_users_user_role_status", ["role", "status"], unique=False
        )

    op.create_table(
        "emails_email",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("from_address", sa.String(length=320), nullable=False),
        sa.Column("reply_to", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("sensitive", sa.Boolean(), nullable=False),
        sa.Column("state", sa.SmallInteger(), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_by", sa.String(length=120), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users_user.id"],
            name=op.f("fk_emails_email_created_by_id_users_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emails_email")),
        sa.UniqueConstraint("message_id", name=op.f("uq_emails_email_message_id")),
    )
    with op.batch_alter_table("emails_email", schema=None) as batch_op:
        batch_op.create_index(
            "ix_emails_email_claim",
            ["state", "priority", "next_attempt_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_emails_email_created_at", ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_emails_email_created_by_id"), ["created_by_id"], unique=False
        )

    op.create_table(
        "emails_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email_id", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=120), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("smtp_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["email_id"],
            ["emails_email.id"],
            name=op.f("fk_emails_attempt_email_id_emails_email"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emails_attempt")),
    )
    with op.batch_alter_table("emails_attempt", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_emails_attempt_email_id"), ["email_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("emails_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_emails_attempt_email_id"))

    op.drop_table("emails_attempt")
    with op.batch_alter_table("emails_email", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_emails_email_created_by_id"))
        batch_op.drop_index("ix_emails_email_created_at")
        batch_op.drop_index("ix_emails_email_claim")

    op.drop_table("emails_email")
    with op.batch_alter_table("users_user", schema=None) as batch_op:
        batch_op.drop_index("uq_users_user_email_lower")
        batch_op.drop_index("ix_users_user_role_status")
        batch_op.drop_index("ix_users_user_created_at")

    op.drop_table("users_user")
