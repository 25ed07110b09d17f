"""Sign in, sign out, change one's own password, sign out everywhere.

Sign-in is throttled per (user name, client address) with growing delays; a session lives on the
server and logout ends it there; a correct password under an older hash is re-hashed with argon2id
(the use cases are in :mod:`engine.services.accounts`).
"""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for

from engine.core import directory
from engine.core.errors import InvalidData
from engine.services import accounts

from webui.security import client_address, login_required, safe_next, sign_in, sign_out, xw

bp = Blueprint("auth", __name__)

# Compared against when the user does not exist, so both answers take as long.
_DUMMY_HASH = directory.hash_password("not-a-password-at-all")


def _user(username: str):
    return xw().read(directory.login_facts, username)


def _throttled(username: str, next_url: str, wait: int):
    return render_template("auth/login.html", username=username, next=next_url, wait=wait), 429


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        if g.get("user") is not None:
            return redirect(safe_next(request.args.get("next")))
        nxt = request.args.get("next", "")
        return render_template("auth/login.html", next=nxt if len(nxt) <= 2000 else "")
    username = (request.form.get("username") or "").strip()[:64]
    password = (request.form.get("password") or "")[:1024]
    next_url = (request.form.get("next") or "")[:2000]
    address = client_address()
    if not username:
        return render_template("auth/login.html", username=username, next=next_url, failed=True), 401
    wait = xw().write(accounts.attempt, username, address)
    if wait:
        return _throttled(username, next_url, wait)
    row = _user(username)
    ok = directory.check_password(password, row.password_hash if row else _DUMMY_HASH) and row is not None \
        and row.active
    if not ok:
        # A deactivated user gets the same answer as a wrong password; the system chain records why.
        reason = "inactive" if row is not None and not row.active else "bad_password"
        wait = xw().write(accounts.failed, username, address, reason=reason)
        return render_template("auth/login.html", username=username, next=next_url, failed=True,
                               wait=wait), 401
    token = xw().write(accounts.finish_sign_in, row, password, address)
    sign_in(row.username, row.password_changed_at, token)
    return redirect(safe_next(next_url))


@bp.post("/logout")
def logout():
    sign_out()
    return redirect(url_for("auth.login", bye=1))


@bp.post("/logout/everywhere")
@login_required
def logout_everywhere():
    """End every session of the signed-in user, on every device (this one too)."""
    xw().write(accounts.sign_out_everywhere, g.user.username)
    sign_out()
    return redirect(url_for("auth.login", bye=1))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password():
    if request.method == "GET":
        count = xw().read(accounts.open_sessions, g.user.id)
        return render_template("auth/password.html", errors={}, sessions_open=count)
    current = (request.form.get("current") or "")[:1024]
    new = (request.form.get("new") or "")[:1024]
    confirm = (request.form.get("confirm") or "")[:1024]
    errors: dict[str, str] = {}
    address = client_address()
    wait = xw().write(accounts.attempt, g.user.username, address)
    row = _user(g.user.username)
    if wait:
        errors["current"] = "wait"
    elif row is None or not directory.check_password(current, row.password_hash):
        xw().write(accounts.failed, g.user.username, address, reason="password_change")
        errors["current"] = "wrong"
    else:
        xw().write(accounts.succeeded, g.user.username, address)
        if new != confirm:
            errors["confirm"] = "mismatch"
        elif new == current:
            errors["new"] = "same"
        else:
            try:
                directory.validate_password(new)
            except InvalidData:
                errors["new"] = "short"
    if errors:
        return render_template("auth/password.html", errors=errors, wait=wait, sessions_open=None), \
            429 if wait else 422
    token = xw().write(accounts.change_password, g.user.username, row.id, new)  # ends every other session
    fresh = _user(g.user.username)
    sign_in(fresh.username, fresh.password_changed_at, token)
    return render_template("auth/password.html", errors={}, changed=True, sessions_open=None)

