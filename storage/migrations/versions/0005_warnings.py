"""warnings: supervision warnings with a unique fingerprint, who they involve, the kinship register

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'warning',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('rule_id', sa.String(length=20), nullable=False),
        sa.Column('severity', sa.String(length=10), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=True),
        sa.Column('summary', sa.String(length=300), nullable=False),
        sa.Column('facts', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('raised_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('handled_by', sa.String(length=64), nullable=False),
        sa.Column('opinion', sa.Text(), nullable=False),
        sa.Column('supervision_case_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['case_id'], ['case_instance.id']),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('fingerprint'),
    )
    op.create_index('ix_warning_org_status', 'warning', ['org_id', 'status'])
    op.create_index('ix_warning_status_severity', 'warning', ['status', 'severity'])
    op.create_index(op.f('ix_warning_case_id'), 'warning', ['case_id'])
    op.create_index(op.f('ix_warning_raised_at'), 'warning', ['raised_at'])
    op.create_index(op.f('ix_warning_rule_id'), 'warning', ['rule_id'])
    op.create_table(
        'warning_subject',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('warning_id', sa.Integer(), nullable=False),
        sa.Column('subject', sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(['warning_id'], ['warning.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('warning_id', 'subject'),
    )
    op.create_index(op.f('ix_warning_subject_subject'), 'warning_subject', ['subject'])
    op.create_table(
        'kinship',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('cadre', sa.String(length=64), nullable=False),
        sa.Column('cadre_name', sa.String(length=100), nullable=False),
        sa.Column('person_name', sa.String(length=100), nullable=False),
        sa.Column('relation', sa.String(length=20), nullable=False),
        sa.Column('degree', sa.Integer(), nullable=False),
        sa.Column('note', sa.String(length=200), nullable=False),
        sa.Column('declared_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('org_id', 'cadre', 'person_name', 'relation'),
    )
    op.create_index(op.f('ix_kinship_org_id'), 'kinship', ['org_id'])
    op.create_index(op.f('ix_kinship_person_name'), 'kinship', ['person_name'])


def downgrade() -> None:
    op.drop_index(op.f('ix_kinship_person_name'), table_name='kinship')
    op.drop_index(op.f('ix_kinship_org_id'), table_name='kinship')
    op.drop_table('kinship')
    op.drop_index(op.f('ix_warning_subject_subject'), table_name='warning_subject')
    op.drop_table('warning_subject')
    op.drop_index(op.f('ix_warning_rule_id'), table_name='warning')
    op.drop_index(op.f('ix_warning_raised_at'), table_name='warning')
    op.drop_index(op.f('ix_warning_case_id'), table_name='warning')
    op.drop_index('ix_warning_status_severity', table_name='warning')
    op.drop_index('ix_warning_org_status', table_name='warning')
    op.drop_table('warning')
