"""search: derived case_field table; indexes for "my cases" and the township case list; the workflow
state moved to its own table (case_state) so that lists read narrow case rows

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'case_field',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=60), nullable=False),
        sa.Column('type', sa.String(length=20), nullable=False),
        sa.Column('step_id', sa.String(length=100), nullable=False),
        sa.Column('text_value', sa.String(length=200), nullable=False),
        sa.Column('number_value', sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['case_instance.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('case_id', 'name'),
    )
    op.create_index('ix_case_field_type_number', 'case_field', ['type', 'number_value'])
    op.create_index('ix_case_field_type_text', 'case_field', ['type', 'text_value', 'case_id'])
    op.create_index('ix_case_org_updated', 'case_instance', ['org_id', 'updated_at'])
    op.create_index('ix_audit_event_actor_case', 'audit_event', ['actor', 'case_id'])
    op.create_index('ix_audit_event_case_type', 'audit_event', ['case_id', 'type', 'at'])
    op.create_index('ix_case_started_by', 'case_instance', ['started_by'])
    op.create_table(
        'case_state',
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('state', sa.Text(), nullable=False),
        sa.Column('serializer_version', sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['case_instance.id']),
        sa.PrimaryKeyConstraint('case_id'),
    )
    op.execute("INSERT INTO case_state (case_id, state, serializer_version) "
               "SELECT id, state, serializer_version FROM case_instance")
    with op.batch_alter_table('case_instance') as batch:
        batch.drop_column('state')
        batch.drop_column('serializer_version')


def downgrade() -> None:
    with op.batch_alter_table('case_instance') as batch:
        batch.add_column(sa.Column('state', sa.Text(), nullable=False, server_default=''))
        batch.add_column(sa.Column('serializer_version', sa.String(length=40), nullable=False, server_default=''))
    op.execute("UPDATE case_instance SET state = (SELECT state FROM case_state WHERE case_id = case_instance.id), "
               "serializer_version = (SELECT serializer_version FROM case_state WHERE case_id = case_instance.id)")
    op.drop_table('case_state')
    op.drop_index('ix_case_started_by', table_name='case_instance')
    op.drop_index('ix_audit_event_case_type', table_name='audit_event')
    op.drop_index('ix_audit_event_actor_case', table_name='audit_event')
    op.drop_index('ix_case_org_updated', table_name='case_instance')
    op.drop_index('ix_case_field_type_text', table_name='case_field')
    op.drop_index('ix_case_field_type_number', table_name='case_field')
    op.drop_table('case_field')
