"""Sessions valid on the server side. The browser's cookie (Flask's signed session) carries a random
token; ``user_session`` holds its SHA-256, so a copy of the database opens no session. A session
ends at once — for every later request, whatever the cookie says — on logout, when the password
changes, when the user is deactivated, and when the user or an administrator signs out everywhere."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from . import audit
from storage.models import User, UserSession

LIFETIME = timedelta(hours=8)
SEEN_EVERY = timedelta(minutes=5)  # how often a request refreshes ``seen_at`` (one UPDATE at most)


def token_id(token: str) -> str:
    return hashlib.sha256(("xiaowei-session:" + token).encode("utf-8")).hexdigest()


def start(session: Session, user_id: int, *, lifetime: timedelta = LIFETIME) -> str:
    """A new session for the user; the token for the cookie."""
    token = secrets.token_urlsafe(32)
    now = audit.db_time()
    session.add(UserSession(id=token_id(token), user_id=user_id, created_at=now, expires_at=now + lifetime,
                            seen_at=now, ended_at=None, end_reason=""))
    session.flush()
    return token


VALID_QUERY = (select(User.id, User.username, User.display_name, User.active, User.password_changed_at,
                      UserSession.seen_at)
               .join(UserSession, UserSession.user_id == User.id))


def lookup(session: Session, token: str | None, now: datetime | None = None):
    """The user row of a valid session (not ended, not expired), or None."""
    if not token or not isinstance(token, str) or len(token) > 100:
        return None
    now = now or audit.db_time()
    return session.execute(VALID_QUERY.where(UserSession.id == token_id(token), UserSession.ended_at.is_(None),
                                             UserSession.expires_at > now)).first()


def touch(session: Session, token: str) -> None:
    session.execute(update(UserSession).where(UserSession.id == token_id(token))
                    .values(seen_at=audit.db_time()))


def end(session: Session, token: str | None, reason: str = "logout") -> bool:
    if not token:
        return False
    result = session.execute(update(UserSession).where(UserSession.id == token_id(token),
                                                       UserSession.ended_at.is_(None))
                             .values(ended_at=audit.db_time(), end_reason=reason))
    return bool(result.rowcount)


def end_all(session: Session, user_id: int, reason: str) -> int:
    """End every open session of a user; how many were open."""
    result = session.execute(update(UserSession).where(UserSession.user_id == user_id,
                                                       UserSession.ended_at.is_(None))
                             .values(ended_at=audit.db_time(), end_reason=reason))
    return int(result.rowcount or 0)


def open_count(session: Session, user_id: int) -> int:
    from sqlalchemy import func

    return session.scalar(select(func.count()).select_from(UserSession).where(
        UserSession.user_id == user_id, UserSession.ended_at.is_(None),
        UserSession.expires_at > audit.db_time())) or 0


def sign_out_everywhere(session: Session, username: str, *, actor: str, reason: str = "everywhere") -> int:
    """End all of a user's sessions (audited in the system chain with the actor)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        from .errors import NotFound

        raise NotFound(f"没有用户“{username}” / no user {username}")
    count = end_all(session, user.id, reason)
    audit.append_system_event(session, "sessions_ended", actor=actor,
                              data={"username": username, "sessions": count, "reason": reason})
    return count


def purge(session: Session, now: datetime | None = None) -> None:
    """Forget sessions that ended or expired more than a month ago (by ``tick``)."""
    now = now or audit.db_time()
    session.execute(delete(UserSession).where(UserSession.expires_at < now - timedelta(days=30)))
