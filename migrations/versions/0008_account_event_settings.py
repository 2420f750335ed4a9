"""account event settings: email on sign-in from a new device

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 09:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    # Added in place, not by SQLite's batch rebuild, which would lose the
    # lower(email) unique index it cannot reflect. Existing accounts start off.
    op.add_column(
        'users_user',
        sa.Column('notify_new_device', sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade():
    op.drop_column('users_user', 'notify_new_device')
