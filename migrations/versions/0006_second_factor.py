"""second factor: TOTP secrets and recovery codes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('users_second_factor',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('secret', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('enrolled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_time_step', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users_user.id'], name=op.f('fk_users_second_factor_user_id_users_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_users_second_factor'))
    )
    op.create_table('users_recovery_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users_user.id'], name=op.f('fk_users_recovery_code_user_id_users_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users_recovery_code'))
    )
    with op.batch_alter_table('users_recovery_code', schema=None) as batch_op:
        batch_op.create_index('ix_users_recovery_code_user_id', ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('users_recovery_code', schema=None) as batch_op:
        batch_op.drop_index('ix_users_recovery_code_user_id')

    op.drop_table('users_recovery_code')
    op.drop_table('users_second_factor')
