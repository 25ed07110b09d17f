"""The transactional outbox: a durable record that a case changed, written in the change's own
transaction, which background work (the warning rules, and any later follow-up) is fed from.

* :func:`enqueue` is called where a case's audit events are appended (:mod:`engine.core.audit`): one
  row per changed case per transaction, one INSERT, nothing read.
* A worker :func:`claim` s due rows for a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number
  of workers share the queue; on SQLite the write transaction is the single writer). It does the work
  and :func:`finish` es the rows **in the transaction that stores the work's results**: if the claim was
  lost meanwhile (the lease ran out and another worker took the rows), finishing fails and that
  transaction rolls back, so a change is never evaluated into the database twice. A worker that dies
  after claiming leaves the rows to expire; the next worker takes them again. A failure is recorded on
  the rows (:func:`fail`) and retried later, with a growing pause.

Leases are counted in wall-clock time (``claimed_until``), never in the engine clock: a fixed clock
(tests, scripted timelines with ``XIAOWEI_NOW``) must not make a claim last forever.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterable

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from . import clock
from storage.batch import WriteBatch
from storage.models import OutboxEntry

CASE_CHANGED = "case_changed"
LEASE = timedelta(seconds=60)
_INSERT = insert(OutboxEntry)
_TXN_KEY = "xiaowei_outbox_txn"


def wall_now() -> datetime:
    """Naive UTC wall-clock time (for leases)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def enqueue(session: Session, case_id: int, *, kind: str = CASE_CHANGED, at: datetime | None = None,
            batch: WriteBatch | None = None) -> None:
    """Record, in the session's current transaction, that ``case_id`` changed (once per transaction);
    with ``batch``, the INSERT goes with the change's other writes."""
    txn = session.get_transaction()
    seen = session.info.get(_TXN_KEY)
    if seen is None or seen[0] is not txn:
        seen = (txn, set())
        session.info[_TXN_KEY] = seen
    key = (kind, case_id)
    if key in seen[1]:
        return
    seen[1].add(key)
    when = clock.to_utc(at or clock.now()).replace(tzinfo=None)
    row = {"kind": kind, "case_id": case_id, "created_at": when, "claimed_by": None, "claimed_until": None,
           "done_at": None, "attempts": 0, "last_error": ""}
    if batch is not None:
        batch.execute(_INSERT, row)
    else:
        session.connection().execute(_INSERT, [row])


def _due(now: datetime):
    return and_(OutboxEntry.done_at.is_(None),
                or_(OutboxEntry.claimed_until.is_(None), OutboxEntry.claimed_until <= now))


def any_due(session: Session, *, now: datetime | None = None) -> bool:
    """Whether a row is due (a read: an idle worker looks without taking SQLite's write lock)."""
    return session.scalar(select(OutboxEntry.id).where(_due(now or wall_now())).limit(1)) is not None


def claim(session: Session, worker: str, *, limit: int = 100, case_id: int | None = None,
          now: datetime | None = None, lease: timedelta = LEASE) -> list[tuple[int, str, int | None]]:
    """Claim up to ``limit`` due rows (oldest first; only ``case_id`` 's if given) for ``lease``:
    ``(id, kind, case_id)`` of each. Commit the session soon after: the claim is the commit."""
    now = now or wall_now()
    query = (select(OutboxEntry.id, OutboxEntry.kind, OutboxEntry.case_id).where(_due(now))
             .order_by(OutboxEntry.id).limit(limit))
    if case_id is not None:
        query = query.where(OutboxEntry.case_id == case_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = [(r.id, r.kind, r.case_id) for r in session.execute(query)]
    if rows:
        session.execute(update(OutboxEntry).where(OutboxEntry.id.in_([r[0] for r in rows]))
                        .values(claimed_by=worker, claimed_until=now + lease, attempts=OutboxEntry.attempts + 1))
    return rows


def finish(session: Session, ids: Iterable[int], worker: str, *, now: datetime | None = None) -> bool:
    """Mark the rows done if ``worker`` still holds them all; False (nothing marked) if it does not."""
    ids = list(ids)
    if not ids:
        return True
    done = session.execute(update(OutboxEntry)
                           .where(OutboxEntry.id.in_(ids), OutboxEntry.claimed_by == worker,
                                  OutboxEntry.done_at.is_(None))
                           .values(done_at=now or wall_now(), claimed_until=None)
                           .execution_options(synchronize_session=False)).rowcount
    return done == len(ids)


def fail(session: Session, ids: Iterable[int], worker: str, error: str, *, now: datetime | None = None) -> None:
    """Record a failure on rows ``worker`` holds; they become due again after a pause that grows with
    the attempts (30 s, 1 min, 2 min … at most an hour)."""
    now = now or wall_now()
    for row_id, attempts in session.execute(select(OutboxEntry.id, OutboxEntry.attempts)
                                            .where(OutboxEntry.id.in_(list(ids)), OutboxEntry.claimed_by == worker,
                                                   OutboxEntry.done_at.is_(None))).all():
        pause = timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))
        session.execute(update(OutboxEntry).where(OutboxEntry.id == row_id)
                        .values(claimed_by=None, claimed_until=now + pause, last_error=error[:2000]))


def release(session: Session, ids: Iterable[int], worker: str) -> None:
    """Give rows back at once (a worker stopping cleanly)."""
    session.execute(update(OutboxEntry).where(OutboxEntry.id.in_(list(ids)), OutboxEntry.claimed_by == worker,
                                              OutboxEntry.done_at.is_(None))
                    .values(claimed_by=None, claimed_until=None))


def purge(session: Session, *, older_than: timedelta = timedelta(days=7), now: datetime | None = None) -> int:
    """Delete rows done longer ago than ``older_than`` (the trail keeps what changed; these are only the queue)."""
    now = now or wall_now()
    return session.execute(delete(OutboxEntry).where(OutboxEntry.done_at.is_not(None),
                                                     OutboxEntry.done_at < now - older_than)).rowcount or 0


def backlog(session: Session, *, now: datetime | None = None) -> dict:
    """How much is waiting: rows due, rows claimed, rows that failed at least once, the oldest due."""
    now = now or wall_now()
    pending = OutboxEntry.done_at.is_(None)
    due = session.scalar(select(func.count()).select_from(OutboxEntry).where(_due(now))) or 0
    claimed = session.scalar(select(func.count()).select_from(OutboxEntry)
                             .where(pending, OutboxEntry.claimed_until > now, OutboxEntry.claimed_by.is_not(None))) or 0
    failing = session.scalar(select(func.count()).select_from(OutboxEntry)
                             .where(pending, OutboxEntry.last_error != "")) or 0
    oldest = session.scalar(select(func.min(OutboxEntry.created_at)).where(pending))
    return {"due": due, "claimed": claimed, "failing": failing, "oldest": oldest}
