"""email suppression list, per-category email preferences, data exports

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 20:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    # Added in place, not by SQLite's batch rebuild, which would lose indexes it
    # cannot reflect. Messages queued before this revision count as account
    # mail: they were written without an unsubscribe link.
    op.add_column(
        'emails_email',
        sa.Column('category', sa.SmallInteger(), nullable=False, server_default='0'),
    )
    op.create_table('emails_suppression',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.Column('category', sa.SmallInteger(), nullable=True),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_emails_suppression'))
    )
    with op.batch_alter_table('emails_suppression', schema=None) as batch_op:
        batch_op.create_index('ix_emails_suppression_created_at', ['created_at'], unique=False)
    # One row per address whatever its case, as uq_users_user_email_lower (0001).
    op.create_index(
        'uq_emails_suppression_address_lower',
        'emails_suppression',
        [sa.text('lower(address)')],
        unique=True,
    )
    op.create_table('privacy_data_export',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.SmallInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users_user.id'], name=op.f('fk_privacy_data_export_user_id_users_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_data_export'))
    )
    with op.batch_alter_table('privacy_data_export', schema=None) as batch_op:
        batch_op.create_index('ix_privacy_data_export_state', ['state', 'id'], unique=False)
        batch_op.create_index('ix_privacy_data_export_user_id', ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('privacy_data_export', schema=None) as batch_op:
        batch_op.drop_index('ix_privacy_data_export_user_id')
        batch_op.drop_index('ix_privacy_data_export_state')

    op.drop_table('privacy_data_export')
    op.drop_index('uq_emails_suppression_address_lower', table_name='emails_suppression')
    with op.batch_alter_table('emails_suppression', schema=None) as batch_op:
        batch_op.drop_index('ix_emails_suppression_created_at')

    op.drop_table('emails_suppression')
    op.drop_column('emails_email', 'category')
