"""Sessions, CSRF tokens and the signed-in user of a request.

The session is Flask's signed cookie (HttpOnly, SameSite=Lax, Secure outside tests). It holds the
user name, a random session token whose SHA-256 is a row of ``user_session`` (:mod:`engine.sessions`:
logout, a password change, deactivation and "sign out everywhere" end it on the server, so a copied
cookie stops working at once) and a per-session CSRF token that every POST must echo (form field
``csrf_token`` or header ``X-CSRF-Token``).
"""

from __future__ import annotations

import hmac
import secrets
from functools import wraps
from typing import Any, Callable

from flask import abort, current_app, g, redirect, request, session, url_for

from engine.core import directory
from engine.core.errors import Forbidden, NotFound
from engine.services.facade import Xiaowei

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def xw() -> Xiaowei:
    return current_app.extensions["xiaowei"]


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    """Refuse a state-changing request whose token does not match the session's (400)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and not request.path.startswith("/api/"):
        sent = request.form.get(CSRF_FIELD)
    if not expected or not sent or not hmac.compare_digest(str(expected), str(sent)):
        g.csrf_failed = True
        abort(400)


def password_stamp(changed_at: Any) -> str:
    return changed_at.isoformat() if changed_at is not None else ""


def client_address() -> str:
    """A keyed hash (16 hex characters) of the client's address: what throttles and records keep."""
    from engine.core.limits import address_hash

    return address_hash(str(current_app.config["SECRET_KEY"]), request.remote_addr or "")[:16]


def sign_in(username: str, changed_at: Any, token: str) -> None:
    """A fresh cookie for the user's new server-side session ``token`` (nothing of the anonymous
    session is kept)."""
    session.clear()
    session.permanent = True
    session["user"] = username
    session["sid"] = token
    session["pwd"] = password_stamp(changed_at)
    session["csrf"] = secrets.token_urlsafe(32)


def sign_out(reason: str = "logout") -> None:
    """End the session on the server (the cookie is worthless from now on) and clear the cookie."""
    token = session.get("sid")
    if token:
        from engine.core import sessions

        with xw().db.write() as s:
            sessions.end(s, token, reason)
    session.clear()


def load_user() -> None:
    """Put the signed-in user (``g.user``: row facts, ``g.actor``: roles) on the request, or None.
    The session must be open on the server: a cookie whose session ended signs in no one."""
    g.user = None
    g.actor = None
    username = session.get("user")
    if not username:
        return
    from engine.core import sessions

    token = session.get("sid")
    now = None
    with xw().db.read() as s:
        row = sessions.lookup(s, token)
        if row is None or row.username != username or not row.active \
                or password_stamp(row.password_changed_at) != session.get("pwd", ""):
            session.clear()
            return
        try:
            actor = directory.load_actor(s, username)
        except (Forbidden, NotFound):
            session.clear()
            return
        from engine.core import audit

        now = audit.db_time()
    if now - row.seen_at >= sessions.SEEN_EVERY:
        with xw().db.write() as s:
            sessions.touch(s, token)
    g.user = row
    g.actor = actor


def login_required(view: Callable) -> Callable:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.get("user") is None:
            if request.path.startswith("/api/"):
                abort(401)
            return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))
        return view(*args, **kwargs)

    return wrapper


def is_local_path(target: str | None) -> bool:
    """A plain path on this site: starts with one "/", no "//" or backslash anywhere, no control
    characters or spaces (a browser drops tabs and newlines: ``/\t/evil.example`` is ``//evil.example``),
    no scheme, no host."""
    from urllib.parse import urlsplit

    if not target or not isinstance(target, str) or len(target) > 2000 or not target.startswith("/"):
        return False
    if "//" in target or "\\" in target or any(ord(ch) < 33 or ord(ch) == 127 for ch in target):
        return False
    try:
        parts = urlsplit(target)
    except ValueError:
        return False
    return not parts.scheme and not parts.netloc


def safe_next(target: str | None) -> str:
    """Only plain local paths are followed after sign-in (no open redirects)."""
    if is_local_path(target):
        return target
    # just signed in: the roles are read on the next request, where "/" sends them on (landing_url)
    return url_for("home") if g.get("actor") is None else landing_url()


# Township supervisors (纪委, 监察办) work from their jurisdiction's warnings, not from a task list.
INBOX_ROLES = frozenset({"township_discipline", "supervision_office"})


def landing_url() -> str:
    """Where a signed-in user starts: the warnings inbox of their jurisdiction for the township's
    discipline and supervision offices; everyone else their tasks."""
    actor = g.get("actor")
    if actor is not None and {role for role, _ in actor.assignments} & INBOX_ROLES:
        return url_for("warnings.index")
    return url_for("tasks.index")
