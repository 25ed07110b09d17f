"""supervision: supervisors' notes about cadres (廉情档案), cases started on a schedule (monthly
checklist, grade notices) once per organization and period

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'supervision_note',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('author', sa.String(length=64), nullable=False),
        sa.Column('subject', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('responsibilities', sa.Text(), nullable=False),
        sa.Column('problems', sa.Text(), nullable=False),
        sa.Column('risks', sa.Text(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_supervision_note_org_id'), 'supervision_note', ['org_id'])
    op.create_index(op.f('ix_supervision_note_subject'), 'supervision_note', ['subject'])
    op.create_table(
        'periodic_case',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('org_id', sa.Integer(), nullable=False),
        sa.Column('period', sa.String(length=7), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=True),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['case_instance.id']),
        sa.ForeignKeyConstraint(['org_id'], ['organization.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('kind', 'org_id', 'period'),
    )


def downgrade() -> None:
    op.drop_table('periodic_case')
    op.drop_index(op.f('ix_supervision_note_subject'), table_name='supervision_note')
    op.drop_index(op.f('ix_supervision_note_org_id'), table_name='supervision_note')
    op.drop_table('supervision_note')
