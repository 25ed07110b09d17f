"""Sign-in throttling per (user name, client address): growing delays instead of a lock-out.

A stranger who knows a cadre's user name can no longer lock the cadre out: failures from one address
slow down only that address's next attempts for that name (none for the first three, then 1 s, 2 s,
4 s … up to 15 minutes); the cadre signs in from any other address at once, and from the same address
after the delay. The gate is atomic: :func:`attempt` locks the pair's row and counts the attempt
*before* the password is checked (and :func:`succeeded` forgets it), so a burst of parallel guesses
cannot all slip through before the first failure lands.

Failures are recorded in the system chain in aggregate — the 1st, 10th, 100th… of a pair, and the
rest when the pair goes quiet (``tick``) or signs in — each event saying how many there were.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from . import audit
from .limits import _insert, _worth_recording
from storage.models import LoginThrottle, User

FREE_FAILURES = 3
MAX_DELAY = timedelta(minutes=15)
QUIET = timedelta(minutes=15)  # a pair without failures this long is summarised by tick
FORGET = timedelta(days=1)


def delay_after(failures: int) -> timedelta:
    """How long a pair waits after its ``failures``-th failure in a row."""
    if failures <= FREE_FAILURES:
        return timedelta(0)
    return min(timedelta(seconds=2 ** min(failures - FREE_FAILURES - 1, 20)), MAX_DELAY)


def key_of(username: str, address: str) -> str:
    return hashlib.sha256(f"login|{username}|{address}".encode("utf-8")).hexdigest()


def attempt(session: Session, username: str, address: str) -> int:
    """Open an attempt for (user name, address): 0 when it may go ahead (counted as a failure until
    :func:`succeeded` says otherwise), else the seconds to wait (nothing is counted)."""
    now = audit.db_time()
    key = key_of(username, address)
    statement = _insert(session)(LoginThrottle).values(
        key=key, username=username[:64], address=address[:16], failures=0, reported=0, first_at=now, last_at=now,
        next_at=now).on_conflict_do_nothing(index_elements=["key"])
    session.execute(statement)
    query = select(LoginThrottle).where(LoginThrottle.key == key)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = session.scalars(query.execution_options(populate_existing=True)).one()
    if row.next_at > now:
        return max(1, int((row.next_at - now).total_seconds() + 0.999))
    row.failures += 1
    row.last_at = now
    row.next_at = now + delay_after(row.failures)
    session.flush()
    return 0


def failed(session: Session, username: str, address: str, *, reason: str) -> int:
    """The attempt failed (wrong password, inactive or unknown user): maybe record it in the system
    chain; the seconds the pair now waits before its next attempt."""
    row = session.get(LoginThrottle, key_of(username, address))
    if row is None:
        return 0
    exists = session.scalar(select(User.id).where(User.username == username)) is not None
    if _worth_recording(row.failures):
        _report(session, row, reason if exists else "unknown_user", exists)
    wait = row.next_at - audit.db_time()
    return max(0, int(wait.total_seconds() + 0.999))


def succeeded(session: Session, username: str, address: str) -> None:
    """The attempt succeeded: the pair starts afresh (failures not yet recorded are recorded first)."""
    row = session.get(LoginThrottle, key_of(username, address))
    if row is None:
        return
    row.failures -= 1  # this attempt was counted as a failure when it opened
    if row.failures > row.reported:
        _report(session, row, "bad_password", True, ended="signed_in")
    session.delete(row)
    session.flush()


def _report(session: Session, row: LoginThrottle, reason: str, exists: bool, *, ended: str = "") -> None:
    data = {"username": row.username, "reason": reason, "failures": row.failures,
            "new_failures": row.failures - row.reported, "address": row.address,
            "since": audit.iso(row.first_at), "next_attempt_after": audit.iso(row.next_at)}
    if ended:
        data["ended"] = ended
    audit.append_system_event(session, "login_failed", actor=row.username if exists else "", data=data)
    row.reported = row.failures


def flush(session: Session, now: datetime | None = None) -> int:
    """Record the failures of pairs gone quiet; forget pairs quiet for a day. Events written."""
    now = now or audit.db_time()
    written = 0
    rows = session.scalars(select(LoginThrottle).where(LoginThrottle.last_at < now - QUIET,
                                                       LoginThrottle.failures > LoginThrottle.reported)
                           .order_by(LoginThrottle.last_at).limit(1000)).all()
    names = {r.username for r in rows}
    known = set(session.scalars(select(User.username).where(User.username.in_(names)))) if names else set()
    for row in rows:
        _report(session, row, "bad_password" if row.username in known else "unknown_user", row.username in known,
                ended="quiet")
        written += 1
    session.flush()
    session.execute(delete(LoginThrottle).where(LoginThrottle.last_at < now - FORGET,
                                                LoginThrottle.failures <= LoginThrottle.reported))
    return written


def waiting(session: Session, username: str) -> list[dict]:
    """The pairs of a user name that wait now (the administrator's user page)."""
    now = audit.db_time()
    rows = session.scalars(select(LoginThrottle).where(LoginThrottle.username == username,
                                                       LoginThrottle.failures > 0)).all()
    return [{"address": r.address, "failures": r.failures, "next_at": r.next_at, "waiting": r.next_at > now}
            for r in rows]
