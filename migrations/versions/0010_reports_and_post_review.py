"""reports on posts and comments; posts that wait for review

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 20:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


# SQLite changes a CHECK by rebuilding the table from its reflection. Only
# posts_post is read: the accounts table it refers to holds the lower(email)
# index that reflection cannot read (and warns about), and is not rebuilt.
POSTS_ONLY = {'resolve_fks': False}


def upgrade():
    # Posts may wait for review: status 3, pending.
    with op.batch_alter_table('posts_post', schema=None, reflect_kwargs=POSTS_ONLY) as batch_op:
        batch_op.drop_constraint(op.f('ck_posts_post_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_posts_post_status'), 'status IN (0, 1, 2, 3)')

    op.create_table(
        'reports_report',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('reporter_id', sa.Integer(), nullable=False),
        sa.Column('post_id', sa.Integer(), nullable=True),
        sa.Column('comment_id', sa.Integer(), nullable=True),
        sa.Column('reason', sa.SmallInteger(), nullable=False),
        sa.Column('note', sa.String(length=500), nullable=True),
        sa.Column('status', sa.SmallInteger(), nullable=False),
        sa.Column('hid_target', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('resolved_by_id', sa.Integer(), nullable=True),
        sa.CheckConstraint(
            '(post_id IS NULL) <> (comment_id IS NULL)', name=op.f('ck_reports_report_one_target')
        ),
        sa.CheckConstraint('reason IN (0, 1, 2, 3)', name=op.f('ck_reports_report_reason')),
        sa.CheckConstraint('status IN (0, 1, 2)', name=op.f('ck_reports_report_status')),
        sa.ForeignKeyConstraint(
            ['comment_id'], ['comments_comment.id'],
            name=op.f('fk_reports_report_comment_id_comments_comment'), ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['post_id'], ['posts_post.id'],
            name=op.f('fk_reports_report_post_id_posts_post'), ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['reporter_id'], ['users_user.id'],
            name=op.f('fk_reports_report_reporter_id_users_user'), ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['resolved_by_id'], ['users_user.id'],
            name=op.f('fk_reports_report_resolved_by_id_users_user'), ondelete='SET NULL',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reports_report')),
    )
    with op.batch_alter_table('reports_report', schema=None) as batch_op:
        batch_op.create_index('ix_reports_report_comment_status', ['comment_id', 'status'], unique=False)
        batch_op.create_index('ix_reports_report_post_status', ['post_id', 'status'], unique=False)
        batch_op.create_index('ix_reports_report_reporter_comment', ['reporter_id', 'comment_id'], unique=True)
        batch_op.create_index('ix_reports_report_reporter_post', ['reporter_id', 'post_id'], unique=True)
        batch_op.create_index('ix_reports_report_status_created', ['status', 'created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('reports_report', schema=None) as batch_op:
        batch_op.drop_index('ix_reports_report_status_created')
        batch_op.drop_index('ix_reports_report_reporter_post')
        batch_op.drop_index('ix_reports_report_reporter_comment')
        batch_op.drop_index('ix_reports_report_post_status')
        batch_op.drop_index('ix_reports_report_comment_status')
    op.drop_table('reports_report')

    # Pending posts go back to drafts: their authors publish them again.
    op.execute('UPDATE posts_post SET status = 0 WHERE status = 3')
    with op.batch_alter_table('posts_post', schema=None, reflect_kwargs=POSTS_ONLY) as batch_op:
        batch_op.drop_constraint(op.f('ck_posts_post_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_posts_post_status'), 'status IN (0, 1, 2)')
