"""post tags

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 20:00:00.000000

Scheduled publishing (a ``published_at`` still to come) needed no schema
change; this revision adds the tags and which post carries which.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'posts_tag',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('slug', sa.String(length=60), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_posts_tag')),
        sa.UniqueConstraint('slug', name=op.f('uq_posts_tag_slug')),
    )
    # One tag per name in any case; autogenerate cannot see expression indexes.
    op.create_index('uq_posts_tag_name_lower', 'posts_tag', [sa.text('lower(name)')], unique=True)
    op.create_table(
        'posts_post_tag',
        sa.Column('post_id', sa.Integer(), nullable=False),
        sa.Column('tag_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ['post_id'], ['posts_post.id'],
            name=op.f('fk_posts_post_tag_post_id_posts_post'), ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['tag_id'], ['posts_tag.id'],
            name=op.f('fk_posts_post_tag_tag_id_posts_tag'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('post_id', 'tag_id', name=op.f('pk_posts_post_tag')),
    )
    op.create_index('ix_posts_post_tag_tag_post', 'posts_post_tag', ['tag_id', 'post_id'], unique=False)


def downgrade():
    op.drop_index('ix_posts_post_tag_tag_post', table_name='posts_post_tag')
    op.drop_table('posts_post_tag')
    op.drop_index('uq_posts_tag_name_lower', table_name='posts_tag')
    op.drop_table('posts_tag')
