"""audit trail; accounts sortable by last sign-in

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 00:35:26.859542

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_label', sa.String(length=300), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('address', sa.String(length=45), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('object_type', sa.String(length=40), nullable=False),
    sa.Column('object_id', sa.String(length=40), nullable=True),
    sa.Column('summary', sa.String(length=500), nullable=False),
    sa.Column('changes', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users_user.id'], name=op.f('fk_audit_event_actor_id_users_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index('ix_audit_event_action_created', ['action', 'created_at'], unique=False)
        batch_op.create_index('ix_audit_event_actor_created', ['actor_id', 'created_at'], unique=False)
        batch_op.create_index('ix_audit_event_created_at', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_audit_event_object', ['object_type', 'object_id', 'created_at'], unique=False)

    # A plain CREATE INDEX: no table rebuild, so the lower(email) index stays.
    op.create_index('ix_users_user_last_login_at', 'users_user', ['last_login_at'], unique=False)



def downgrade():
    op.drop_index('ix_users_user_last_login_at', table_name='users_user')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_event_object')
        batch_op.drop_index('ix_audit_event_created_at')
        batch_op.drop_index('ix_audit_event_actor_created')
        batch_op.drop_index('ix_audit_event_action_created')

    op.drop_table('audit_event')
