"""email queue indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 23:08:45.304487

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('emails_attempt', schema=None) as batch_op:
        batch_op.create_index('ix_emails_attempt_outcome_started_at', ['outcome', 'started_at'], unique=False)

    with op.batch_alter_table('emails_email', schema=None) as batch_op:
        batch_op.create_index('ix_emails_email_sent_at', ['sent_at'], unique=False)
        batch_op.create_index('ix_emails_email_state_created_at', ['state', 'created_at'], unique=False)



def downgrade():
    with op.batch_alter_table('emails_email', schema=None) as batch_op:
        batch_op.drop_index('ix_emails_email_state_created_at')
        batch_op.drop_index('ix_emails_email_sent_at')

    with op.batch_alter_table('emails_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_emails_attempt_outcome_started_at')

