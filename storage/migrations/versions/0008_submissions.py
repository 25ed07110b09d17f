"""submissions: every completion of a step kept as made (the case file, 卷宗), filled from the
step_completed events already in the audit chains (the chains themselves are not touched)

Revision ID: 0008
Revises: 0007
"""
import json

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'submission',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('step_id', sa.String(length=100), nullable=False),
        sa.Column('step_name', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('round', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.String(length=36), nullable=False),
        sa.Column('actor', sa.String(length=64), nullable=False),
        sa.Column('role', sa.String(length=40), nullable=False),
        sa.Column('on_behalf_of', sa.String(length=50), nullable=True),
        sa.Column('proxy_reason', sa.String(length=200), nullable=True),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('values', sa.Text(), nullable=False),
        sa.Column('attachments', sa.Text(), nullable=False),
        sa.Column('event_seq', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['case_instance.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('case_id', 'seq'),
    )
    op.create_index('ix_submission_case_step', 'submission', ['case_id', 'step_id', 'round'])
    _fill_from_events()


def _fill_from_events() -> None:
    """One submission per step_completed event, in chain order; rounds counted per case and step."""
    conn = op.get_bind()
    events = sa.table('audit_event', sa.column('case_id'), sa.column('seq'), sa.column('type'),
                      sa.column('at'), sa.column('actor'), sa.column('role'), sa.column('data'))
    submission = sa.table('submission', *(sa.column(c) for c in (
        'case_id', 'seq', 'step_id', 'step_name', 'kind', 'round', 'task_id', 'actor', 'role', 'on_behalf_of',
        'proxy_reason', 'at', 'values', 'attachments', 'event_seq')))
    query = (sa.select(events.c.case_id, events.c.seq, events.c.at, events.c.actor, events.c.role, events.c.data)
             .where(events.c.type == 'step_completed', events.c.case_id.isnot(None))
             .order_by(events.c.case_id, events.c.seq))
    rows, case_id, seq, rounds = [], None, 0, {}
    for event in conn.execute(query):
        if event.case_id != case_id:
            case_id, seq, rounds = event.case_id, 0, {}
        data = json.loads(event.data)
        step = str(data.get('step') or '')
        seq += 1
        rounds[step] = rounds.get(step, 0) + 1
        proxy = data.get('on_behalf_of') or {}
        rows.append({
            'case_id': event.case_id, 'seq': seq, 'step_id': step[:100], 'step_name': str(data.get('name') or '')[:200],
            'kind': str(data.get('kind') or 'task')[:20], 'round': rounds[step], 'task_id': str(data.get('task_id') or '')[:36],
            'actor': event.actor or '', 'role': event.role or '',
            'on_behalf_of': (proxy.get('name') or None) if isinstance(proxy, dict) else None,
            'proxy_reason': (proxy.get('reason') or None) if isinstance(proxy, dict) else None,
            'at': event.at,
            'values': json.dumps(data.get('data') or {}, ensure_ascii=False, sort_keys=True, separators=(',', ':')),
            'attachments': json.dumps(data.get('attachments') or [], ensure_ascii=False, sort_keys=True,
                                      separators=(',', ':')),
            'event_seq': event.seq,
        })
        if len(rows) >= 1000:
            conn.execute(submission.insert(), rows)
            rows = []
    if rows:
        conn.execute(submission.insert(), rows)


def downgrade() -> None:
    op.drop_index('ix_submission_case_step', table_name='submission')
    op.drop_table('submission')
