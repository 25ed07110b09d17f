"""township variants of district procedures (issue #15): one row per (procedure, township); the
variant's versions are procedure_version rows and its draft a procedure_draft under its key

Revision ID: 0013
Revises: 0012
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'procedure_variant',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('procedure_id', sa.String(length=40), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=40), nullable=False),
        sa.Column('current_version_id', sa.Integer(), nullable=True),
        sa.Column('base_version_id', sa.Integer(), nullable=True),
        sa.Column('base_table', sa.Text(), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['procedure_id'], ['procedure.id']),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('procedure_id', 'org_id'),
        sa.UniqueConstraint('key'),
    )
    op.create_index('ix_procedure_variant_procedure_id', 'procedure_variant', ['procedure_id'])
    op.create_index('ix_procedure_variant_org_id', 'procedure_variant', ['org_id'])


def downgrade() -> None:
    op.drop_index('ix_procedure_variant_org_id', table_name='procedure_variant')
    op.drop_index('ix_procedure_variant_procedure_id', table_name='procedure_variant')
    op.drop_table('procedure_variant')
