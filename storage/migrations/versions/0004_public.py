"""public: rate-limit log of what the public sends without an account (objections, reports)

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'public_submission',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('bucket', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_public_submission_bucket_at', 'public_submission', ['bucket', 'kind', 'at'])
    op.create_index(op.f('ix_public_submission_at'), 'public_submission', ['at'])


def downgrade() -> None:
    op.drop_index(op.f('ix_public_submission_at'), table_name='public_submission')
    op.drop_index('ix_public_submission_bucket_at', table_name='public_submission')
    op.drop_table('public_submission')
