"""Signing in and out, and one's own password: each a use case in one transaction, for the web app.

Sign-in is throttled per (user name, client address) with growing delays (:mod:`engine.core.throttle`):
no stranger can lock a cadre out. A session lives on the server (:mod:`engine.core.sessions`); logout
and a password change end it there. A correct password stored under an older hash is re-hashed with
argon2id (:mod:`engine.core.passwords`).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from engine.core import directory, passwords, sessions, throttle


def attempt(session: Session, username: str, address: str) -> int:
    """Seconds this (user name, address) must still wait before trying again (0: try now)."""
    return throttle.attempt(session, username, address)


def failed(session: Session, username: str, address: str, *, reason: str) -> int:
    """A failed attempt: the next delay of this (user name, address), in seconds."""
    return throttle.failed(session, username, address, reason=reason)


def succeeded(session: Session, username: str, address: str) -> None:
    throttle.succeeded(session, username, address)


def finish_sign_in(session: Session, row, password: str, address: str) -> str:
    """The password was right: clear the throttle, record the sign-in, upgrade an old hash, and open a
    server-side session; its token (the cookie carries it)."""
    throttle.succeeded(session, row.username, address)
    directory.record_login_success(session, row.username)
    if passwords.needs_rehash(row.password_hash):
        directory.upgrade_hash(session, row.username, password)
    return sessions.start(session, row.id)


def change_password(session: Session, username: str, user_id: int, new: str) -> str:
    """Set one's own password (every open session ends) and open a fresh session for this browser."""
    directory.set_password(session, username, new, actor=username)
    return sessions.start(session, user_id)


def sign_out_everywhere(session: Session, username: str) -> int:
    """End every session of the user, on every device."""
    return sessions.sign_out_everywhere(session, username, actor=username)


def open_sessions(session: Session, user_id: int) -> int:
    return sessions.open_count(session, user_id)
