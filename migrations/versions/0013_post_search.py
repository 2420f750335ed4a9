"""full-text search over posts (tsvector on PostgreSQL, FTS5 on SQLite)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 20:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
