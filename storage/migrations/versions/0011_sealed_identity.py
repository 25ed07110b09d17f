"""sealed identity: objectors' and reporters' names and phones out of the hashed trail (a salted
commitment stays in the event); objections with receipt codes and the notice they were filed under

Existing ``objection_filed`` events get their ``objection`` row (no receipt code: none was issued);
the names and phones they already hold stay in their hashed data and are masked when shown.
Reporters' names and phones leave the derived search table ``case_field``.

Revision ID: 0011
Revises: 0010
"""
import json

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sealed_identity',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('name', sa.String(length=50), nullable=False),
        sa.Column('phone', sa.String(length=20), nullable=False),
        sa.Column('salt', sa.String(length=64), nullable=False),
        sa.Column('commitment', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['case_instance.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('case_id', 'seq'),
    )
    op.create_table(
        'objection',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('receipt_code', sa.String(length=20), nullable=True),
        sa.Column('step_id', sa.String(length=100), nullable=False),
        sa.Column('node_id', sa.String(length=100), nullable=False),
        sa.Column('timer_task_id', sa.String(length=36), nullable=False),
        sa.Column('filed_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['case_instance.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('case_id', 'seq'),
        sa.UniqueConstraint('receipt_code'),
    )
    op.create_index('ix_objection_case_timer', 'objection', ['case_id', 'timer_task_id'])
    _backfill_objections()
    # case_field is derived (search): reporters' names and phones are no longer kept there.
    op.execute("DELETE FROM case_field WHERE name IN ('reporter_name', 'reporter_phone')")


def _backfill_objections() -> None:
    """One row per existing objection_filed event; the notice timer it was filed under when that timer
    still waits (an ended notice needs none: it counts no more objections)."""
    conn = op.get_bind()
    events = conn.execute(sa.text(
        "SELECT case_id, seq, data, at FROM audit_event WHERE type = 'objection_filed' AND case_id IS NOT NULL"
        " ORDER BY case_id, seq")).all()
    if not events:
        return
    timers = {(r.case_id, r.node_id): r.task_id for r in conn.execute(sa.text(
        "SELECT case_id, node_id, task_id FROM timer_due")).all()}
    table = sa.table('objection', sa.column('case_id'), sa.column('seq'), sa.column('receipt_code'),
                     sa.column('step_id'), sa.column('node_id'), sa.column('timer_task_id'), sa.column('filed_at'))
    rows = []
    for ev in events:
        try:
            data = json.loads(ev.data)
        except ValueError:
            data = {}
        node = str(data.get("node") or "")[:100]
        rows.append({"case_id": ev.case_id, "seq": ev.seq, "receipt_code": None,
                     "step_id": str(data.get("step") or "")[:100], "node_id": node,
                     "timer_task_id": timers.get((ev.case_id, node), ""), "filed_at": ev.at})
    op.bulk_insert(table, rows)


def downgrade() -> None:
    op.drop_index('ix_objection_case_timer', table_name='objection')
    op.drop_table('objection')
    op.drop_table('sealed_identity')
