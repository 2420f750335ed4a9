"""keep a post's row, search vector included, in one heap tuple (PostgreSQL)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 10:00:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

# Search reads the vector of every candidate post. PostgreSQL moves a value out
# of a row longer than about 2 kB into the TOAST table, a second index lookup
# and page per read; a post of a few paragraphs, vector included, is that long.
# Rows are now kept whole up to 4 kB, two to a page. The setting applies to rows
# as they are written: `VACUUM FULL posts_post` applies it to the existing ones.
TOAST_TUPLE_TARGET = 4080


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f'ALTER TABLE posts_post SET (toast_tuple_target = {TOAST_TUPLE_TARGET})')


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE posts_post RESET (toast_tuple_target)')
