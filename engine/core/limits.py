"""Limits that hold under concurrency: every count is one atomic statement, never read-then-write.

* :func:`bump` — ``INSERT … ON CONFLICT DO UPDATE SET count = count + n RETURNING count`` on a
  (key, window) row (SQLite ≥ 3.35 and PostgreSQL): two requests at the same moment get different
  numbers, so exactly ``limit`` of them pass.
* :func:`take` / :func:`give_back` — a rate limit per key and hour (public objections and reports).
* :func:`use_stamp` — a public form's stamp is good once (a unique key: the second insert fails).
* :func:`charge_upload` — bytes a user may upload per day.
* :func:`refused` — a refused request (403, 429, a CSRF failure) on any route, recorded in the system
  chain in aggregate: the 1st, 10th, 100th… of a client in an hour, each event saying how many.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from . import audit, security_settings
from .errors import InvalidData
from storage.db import dialect_insert
from storage.models import FormStamp, RateCounter

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
CHINA = timedelta(hours=8)


def _insert(session: Session):
    return dialect_insert(session.get_bind().dialect.name)


def window_of(at: datetime, size: timedelta) -> datetime:
    """The start of the window of ``size`` (an hour or a Beijing day) that ``at`` (naive UTC) falls in."""
    if size >= DAY:
        local = at + CHINA
        return datetime(local.year, local.month, local.day) - CHINA
    return at.replace(minute=0, second=0, microsecond=0)


def bump(session: Session, key: str, window: datetime, by: int = 1) -> int:
    """Add ``by`` to the counter of (key, window) and return its new value, in one statement."""
    insert = _insert(session)
    statement = insert(RateCounter).values(key=key[:120], window_start=window, count=by)
    statement = statement.on_conflict_do_update(index_elements=["key", "window_start"],
                                                set_={"count": RateCounter.count + by})
    return int(session.execute(statement.returning(RateCounter.count)).scalar_one())


def take(session: Session, key: str, limit: int, *, size: timedelta = HOUR) -> bool:
    """Reserve one use of ``key`` in the current window; False when the limit is reached (the
    reservation then counts nothing that matters: the request is refused)."""
    return bump(session, key, window_of(audit.db_time(), size)) <= limit


def give_back(session: Session, key: str, *, size: timedelta = HOUR) -> None:
    """Return a reservation (the submission was refused for its content, not for its number)."""
    bump(session, key, window_of(audit.db_time(), size), -1)


STAMP_MAX_AGE = timedelta(hours=6)


def use_stamp(session: Session, nonce: str) -> bool:
    """Mark a form stamp used; False when it was used before (a replayed or double-sent form).
    One ``INSERT … ON CONFLICT DO NOTHING RETURNING``: of two identical posts, one wins."""
    statement = _insert(session)(FormStamp).values(nonce=nonce[:64], used_at=audit.db_time())
    statement = statement.on_conflict_do_nothing(index_elements=["nonce"]).returning(FormStamp.nonce)
    return session.execute(statement).first() is not None


def charge_upload(session: Session, username: str, size: int) -> None:
    """Count ``size`` new bytes against the user's daily upload quota (in the storing transaction:
    when the quota is exceeded the whole upload is refused and the count rolled back with it)."""
    if size <= 0:
        return
    quota = security_settings.upload_quota_bytes()
    used = bump(session, f"upload:{username}", window_of(audit.db_time(), DAY), size)
    if used > quota:
        mb = quota // (1024 * 1024)
        raise InvalidData(f"今天上传的附件已超过每人每天 {mb} MB 的限额,请明天再传或联系镇街管理员 / "
                          f"over the daily upload quota of {mb} MB", {"attachments": f"超过每天 {mb} MB 的上传限额"})


def _worth_recording(count: int) -> bool:
    """1, 10, 100, 1000…: the system chain grows by the logarithm of a flood, not by the flood."""
    while count >= 10 and count % 10 == 0:
        count //= 10
    return count == 1


def refused(session: Session, *, who: str, address: str, status: int, method: str, path: str,
            endpoint: str | None, reason: str = "") -> bool:
    """Record a refused request in the system chain (aggregated per client, status and hour).
    ``who`` is the signed-in user name or "" for anonymous; ``address`` a keyed hash of the address.
    True when this one was written as an event."""
    client = who or address
    count = bump(session, f"refused:{status}:{client}", window_of(audit.db_time(), HOUR))
    if not _worth_recording(count):
        return False
    audit.append_system_event(session, "request_refused", actor=who, data={
        "status": status, "method": method[:10], "path": path[:200], "endpoint": endpoint or "",
        "reason": reason[:100], "address": address[:16], "count_this_hour": count})
    return True


def address_hash(secret: str, address: str) -> str:
    """A keyed hash of a client address (the address itself is never stored)."""
    return hashlib.sha256(f"{secret}|{address}".encode("utf-8")).hexdigest()


def purge(session: Session, now: datetime | None = None) -> None:
    """Drop counters and stamps that no longer matter (by ``tick``)."""
    now = now or audit.db_time()
    session.execute(delete(RateCounter).where(RateCounter.window_start < now - 2 * DAY))
    session.execute(delete(FormStamp).where(FormStamp.used_at < now - 2 * STAMP_MAX_AGE))
