"""server-side sign-in sessions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('users_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('address', sa.String(length=45), nullable=True),
    sa.Column('device', sa.String(length=200), nullable=False),
    sa.Column('second_factor', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users_user.id'], name=op.f('fk_users_session_user_id_users_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users_session'))
    )
    with op.batch_alter_table('users_session', schema=None) as batch_op:
        batch_op.create_index('ix_users_session_token_hash', ['token_hash'], unique=True)
        batch_op.create_index('ix_users_session_user_last_seen', ['user_id', 'last_seen_at'], unique=False)
        batch_op.create_index('ix_users_session_last_seen_at', ['last_seen_at'], unique=False)


def downgrade():
    with op.batch_alter_table('users_session', schema=None) as batch_op:
        batch_op.drop_index('ix_users_session_last_seen_at')
        batch_op.drop_index('ix_users_session_user_last_seen')
        batch_op.drop_index('ix_users_session_token_hash')

    op.drop_table('users_session')
