"""full-text search over posts (tsvector on PostgreSQL, FTS5 on SQLite)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 20:00:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


# The same objects portal/posts/models.py attaches to the table for create_all;
# written out here so the revision never changes when the application does.
POSTGRESQL_UPGRADE = (
    # Weight A for the title, B for the body. Adding a stored generated column
    # computes it for every existing post (the table is rewritten once). Angle
    # brackets become spaces: PostgreSQL's parser drops whatever looks like a tag.
    "ALTER TABLE posts_post ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('simple'::regconfig, translate(title, '<>', '  ')), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, translate(body, '<>', '  ')), 'B')) STORED",
    "CREATE INDEX ix_posts_post_search ON posts_post USING gin (search_vector)",
)
POSTGRESQL_DOWNGRADE = (
    "DROP INDEX ix_posts_post_search",
    "ALTER TABLE posts_post DROP COLUMN search_vector",
)

SQLITE_UPGRADE = (
    "CREATE VIRTUAL TABLE posts_post_fts USING fts5(title, body, content='posts_post', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER posts_post_fts_insert AFTER INSERT ON posts_post BEGIN "
    "INSERT INTO posts_post_fts (rowid, title, body) VALUES (new.id, new.title, new.body); "
    "END",
    "CREATE TRIGGER posts_post_fts_delete AFTER DELETE ON posts_post BEGIN "
    "INSERT INTO posts_post_fts (posts_post_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); "
    "END",
    "CREATE TRIGGER posts_post_fts_update AFTER UPDATE OF title, body ON posts_post BEGIN "
    "INSERT INTO posts_post_fts (posts_post_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); "
    "INSERT INTO posts_post_fts (rowid, title, body) VALUES (new.id, new.title, new.body); "
    "END",
    # Index the posts that exist already.
    "INSERT INTO posts_post_fts (posts_post_fts) VALUES ('rebuild')",
)
SQLITE_DOWNGRADE = (
    "DROP TRIGGER posts_post_fts_update",
    "DROP TRIGGER posts_post_fts_delete",
    "DROP TRIGGER posts_post_fts_insert",
    "DROP TABLE posts_post_fts",
)

# Note for later revisions: on SQLite a batch rebuild of posts_post (a copy
# under a new name) drops these triggers; such a revision must create them again.


def _run(statements):
    for statement in statements:
        op.execute(statement)


def upgrade():
    dialect = op.get_bind().dialect.name
    if dialect == 'postgresql':
        _run(POSTGRESQL_UPGRADE)
    elif dialect == 'sqlite':
        _run(SQLITE_UPGRADE)


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == 'postgresql':
        _run(POSTGRESQL_DOWNGRADE)
    elif dialect == 'sqlite':
        _run(SQLITE_DOWNGRADE)
