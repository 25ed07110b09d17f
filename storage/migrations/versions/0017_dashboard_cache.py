"""dashboard cache: the dashboard's computed figures per scope, and a version per township that the
outbox worker moves when a case there changes (the cached figures of that township are then stale)

Revision ID: 0017
Revises: 0016
"""
from alembic import op
import sqlalchemy as sa


revision = '0017'
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'dashboard_version',
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('org_id'),
    )
    op.create_table(
        'dashboard_cache',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('versions', sa.Text(), nullable=False),
        sa.Column('figures', sa.Text(), nullable=False),
        sa.Column('computed_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('key'),
    )


def downgrade() -> None:
    op.drop_table('dashboard_cache')
    op.drop_table('dashboard_version')
