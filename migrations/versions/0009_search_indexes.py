"""substring search indexes (pg_trgm GIN on PostgreSQL)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 20:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


# The columns staff search by any part (portal.search): a GIN index over the
# trigrams of each serves ILIKE '%word%' on PostgreSQL. SQLite has no such
# index and scans; it gets nothing here.
SEARCHED = {
    'users_user': ('email', 'name', 'handle'),
    'posts_post': ('title',),
    'emails_email': ('to_address', 'subject'),
}


def _indexes():
    for table, columns in SEARCHED.items():
        for column in columns:
            yield f'ix_{table}_{column}_trgm', table, column


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        return
    # The extension is the database's, not this schema's: use it wherever it
    # is installed, and install it here if it is nowhere.
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    schema = bind.execute(
        sa.text(
            'SELECT quote_ident(n.nspname) FROM pg_extension e '
            'JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = :name'
        ),
        {'name': 'pg_trgm'},
    ).scalar_one()
    for name, table, column in _indexes():
        op.execute(f'CREATE INDEX {name} ON {table} USING gin ({column} {schema}.gin_trgm_ops)')


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    for name, _table, _column in _indexes():
        op.drop_index(name)
    # pg_trgm stays: other schemas or applications in the database may use it.
