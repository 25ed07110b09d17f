"""drafts: procedure drafts with optimistic revisions; effective date and change summary of a
version; the township that owns a procedure

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'procedure_draft',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('procedure_id', sa.String(length=40), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=True),
        sa.Column('bpmn_xml', sa.Text(), nullable=False),
        sa.Column('step_table', sa.Text(), nullable=False),
        sa.Column('base_version_id', sa.Integer(), nullable=True),
        sa.Column('revision', sa.Integer(), nullable=False),
        sa.Column('source', sa.String(length=200), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_by', sa.String(length=64), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('procedure_id'),
    )
    op.create_index(op.f('ix_procedure_draft_org_id'), 'procedure_draft', ['org_id'])
    op.add_column('procedure_version', sa.Column('effective_from', sa.DateTime(), nullable=True))
    op.add_column('procedure_version', sa.Column('change_summary', sa.Text(), nullable=False, server_default=''))
    op.add_column('procedure', sa.Column('owner_org_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('procedure') as batch:
        batch.drop_column('owner_org_id')
    with op.batch_alter_table('procedure_version') as batch:
        batch.drop_column('change_summary')
        batch.drop_column('effective_from')
    op.drop_index(op.f('ix_procedure_draft_org_id'), table_name='procedure_draft')
    op.drop_table('procedure_draft')
