"""posts and comments; profile handles and comment notifications on accounts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 00:27:11.311857

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('posts_post',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=False),
    sa.Column('status', sa.SmallInteger(), nullable=False),
    sa.Column('comment_count', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('status IN (0, 1, 2)', name=op.f('ck_posts_post_status')),
    sa.ForeignKeyConstraint(['author_id'], ['users_user.id'], name=op.f('fk_posts_post_author_id_users_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_posts_post')),
    sa.UniqueConstraint('slug', name=op.f('uq_posts_post_slug'))
    )
    with op.batch_alter_table('posts_post', schema=None) as batch_op:
        batch_op.create_index('ix_posts_post_author_status_published', ['author_id', 'status', 'published_at', 'id'], unique=False)
        batch_op.create_index('ix_posts_post_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_posts_post_status_published', ['status', 'published_at', 'id'], unique=False)

    op.create_table('comments_comment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('post_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=False),
    sa.Column('status', sa.SmallInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('moderated_by_id', sa.Integer(), nullable=True),
    sa.Column('moderated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('moderation_reason', sa.String(length=500), nullable=True),
    sa.CheckConstraint('status IN (0, 1, 2, 3)', name=op.f('ck_comments_comment_status')),
    sa.ForeignKeyConstraint(['author_id'], ['users_user.id'], name=op.f('fk_comments_comment_author_id_users_user')),
    sa.ForeignKeyConstraint(['moderated_by_id'], ['users_user.id'], name=op.f('fk_comments_comment_moderated_by_id_users_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['post_id'], ['posts_post.id'], name=op.f('fk_comments_comment_post_id_posts_post')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_comments_comment'))
    )
    with op.batch_alter_table('comments_comment', schema=None) as batch_op:
        batch_op.create_index('ix_comments_comment_author_created', ['author_id', 'created_at'], unique=False)
        batch_op.create_index('ix_comments_comment_post_status_created', ['post_id', 'status', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_comments_comment_status_created', ['status', 'created_at', 'id'], unique=False)

    # Columns are added in place, not by rebuilding the table as SQLite's batch
    # mode would: a rebuild loses the lower(email) unique index it cannot reflect.
    # Existing accounts get a handle from their id ("member-12"), unique at once.
    op.add_column(
        'users_user',
        sa.Column('handle', sa.String(length=40), nullable=False, server_default=''),
    )
    op.add_column(
        'users_user',
        sa.Column('notify_comments', sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    users = sa.table('users_user', sa.column('id', sa.Integer), sa.column('handle', sa.String))
    op.execute(
        users.update().values(handle=sa.literal('member-') + sa.cast(users.c.id, sa.String))
    )
    if op.get_bind().dialect.name != 'sqlite':
        # SQLite cannot drop a default in place; there the unique index below
        # still refuses a second empty handle.
        op.alter_column('users_user', 'handle', server_default=None)
    op.create_index(op.f('ix_users_user_handle'), 'users_user', ['handle'], unique=True)


def downgrade():
    op.drop_index(op.f('ix_users_user_handle'), table_name='users_user')
    # In place again (SQLite 3.35+ drops columns itself), keeping the email index.
    op.drop_column('users_user', 'notify_comments')
    op.drop_column('users_user', 'handle')

    with op.batch_alter_table('comments_comment', schema=None) as batch_op:
        batch_op.drop_index('ix_comments_comment_status_created')
        batch_op.drop_index('ix_comments_comment_post_status_created')
        batch_op.drop_index('ix_comments_comment_author_created')

    op.drop_table('comments_comment')
    with op.batch_alter_table('posts_post', schema=None) as batch_op:
        batch_op.drop_index('ix_posts_post_status_published')
        batch_op.drop_index('ix_posts_post_created_at')
        batch_op.drop_index('ix_posts_post_author_status_published')

    op.drop_table('posts_post')
