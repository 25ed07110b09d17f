"""Sign in, sign out, change one's own password."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for

from engine.core import directory
from engine.core.errors import InvalidData

from webui.security import login_required, safe_next, sign_in, sign_out, xw

bp = Blueprint("auth", __name__)

# Compared against when the user does not exist, so both answers take as long.
_DUMMY_HASH = directory.hash_password("not-a-password-at-all")


def _user(username: str):
    return xw().read(directory.login_facts, username)


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        if g.get("user") is not None:
            return redirect(safe_next(request.args.get("next")))
        return render_template("auth/login.html", next=request.args.get("next", ""))
    username = (request.form.get("username") or "").strip()[:64]
    password = request.form.get("password") or ""
    next_url = request.form.get("next", "")
    with xw().db.read() as s:
        locked = directory.login_lock(s, username) if username else None
    if locked is not None:
        xw().write(directory.record_login_failure, username, reason="locked", remote_addr=request.remote_addr or "")
        return render_template("auth/login.html", username=username, next=next_url, locked_until=locked), 429
    row = _user(username) if username else None
    ok = directory.check_password(password, row.password_hash if row else _DUMMY_HASH) and row is not None \
        and row.active
    if not ok:
        # A deactivated user gets the same answer as a wrong password; the system chain records why.
        reason = "inactive" if row is not None and not row.active else "bad_password"
        locked = xw().write(directory.record_login_failure, username, reason=reason,
                            remote_addr=request.remote_addr or "")
        status = 429 if locked else 401
        return render_template("auth/login.html", username=username, next=next_url, failed=True,
                               locked_until=locked), status
    xw().write(directory.record_login_success, row.username)
    sign_in(row.username, row.password_changed_at)
    return redirect(safe_next(next_url))


@bp.post("/logout")
def logout():
    sign_out()
    return redirect(url_for("auth.login", bye=1))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password():
    if request.method == "GET":
        return render_template("auth/password.html", errors={})
    current = request.form.get("current") or ""
    new = request.form.get("new") or ""
    confirm = request.form.get("confirm") or ""
    errors: dict[str, str] = {}
    row = _user(g.user.username)
    if row is None or not directory.check_password(current, row.password_hash):
        locked = xw().write(directory.record_login_failure, g.user.username, reason="password_change",
                            remote_addr=request.remote_addr or "")
        if locked:
            sign_out()
            return redirect(url_for("auth.login"))
        errors["current"] = "wrong"
    elif new != confirm:
        errors["confirm"] = "mismatch"
    elif new == current:
        errors["new"] = "same"
    else:
        try:
            directory.validate_password(new)
        except InvalidData:
            errors["new"] = "short"
    if errors:
        return render_template("auth/password.html", errors=errors), 422
    xw().write(directory.set_password, g.user.username, new, actor=g.user.username)
    fresh = _user(g.user.username)
    sign_in(fresh.username, fresh.password_changed_at)
    return render_template("auth/password.html", errors={}, changed=True)
