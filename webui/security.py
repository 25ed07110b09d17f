"""Sessions, CSRF tokens and the signed-in user of a request.

The session is Flask's signed cookie (HttpOnly, SameSite=Lax, Secure outside tests). It holds the
user name, the time the password was last changed (a password change ends other sessions) and a
per-session CSRF token that every POST must echo (form field ``csrf_token`` or header
``X-CSRF-Token``).
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


def sign_in(username: str, changed_at: Any) -> None:
    """A fresh session for the user (nothing of the anonymous session is kept)."""
    session.clear()
    session.permanent = True
    session["user"] = username
    session["pwd"] = password_stamp(changed_at)
    session["csrf"] = secrets.token_urlsafe(32)


def sign_out() -> None:
    session.clear()


def load_user() -> None:
    """Put the signed-in user (``g.user``: row facts, ``g.actor``: roles) on the request, or None."""
    g.user = None
    g.actor = None
    username = session.get("user")
    if not username:
        return
    with xw().db.read() as s:
        row = directory.session_facts(s, username)
        if row is None or not row.active or password_stamp(row.password_changed_at) != session.get("pwd", ""):
            sign_out()
            return
        try:
            actor = directory.load_actor(s, username)
        except (Forbidden, NotFound):
            sign_out()
            return
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


def safe_next(target: str | None) -> str:
    """Only local paths are followed after sign-in (no open redirects)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("tasks.index")
