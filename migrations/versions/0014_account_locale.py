"""account language and time zone

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 20:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    # Added in place, not by SQLite's batch rebuild, which would lose the
    # lower(email) unique index it cannot reflect. NULL follows the browser's
    # language and the site's time zone, so existing accounts see no change.
    op.add_column('users_user', sa.Column('locale', sa.String(length=16), nullable=True))
    op.add_column('users_user', sa.Column('timezone', sa.String(length=64), nullable=True))


def downgrade():
    op.drop_column('users_user', 'timezone')
    op.drop_column('users_user', 'locale')
