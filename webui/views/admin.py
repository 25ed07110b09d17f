"""管理: users and their roles, local parameters and the 'system' audit chain, for township and district
administrators, always within the organizations they administer (see :mod:`engine.services.admin`)."""

from __future__ import annotations

from flask import (Blueprint, abort, flash, g, get_flashed_messages, redirect, render_template, request,
                   url_for)

from engine.services import admin as engine_admin
from engine.core import audit, catalogue, directory
from engine.core.errors import Forbidden, InvalidData

from webui.i18n import gettext as _
from webui.security import login_required, xw
from webui.i18n import current as current_language

bp = Blueprint("admin", __name__, url_prefix="/admin")

AUDIT_PER_PAGE = 50


@bp.before_request
def _only_admins():
    # Runs before login_required: anonymous users are sent to the login page by the view's decorator.
    if g.get("user") is not None and not engine_admin.is_admin(g.actor):
        abort(403)


@bp.errorhandler(Forbidden)
def _forbidden(exc: Forbidden):
    return render_template("admin/forbidden.html", message=exc.message), 403


@bp.errorhandler(403)
def _forbidden_plain(_exc):
    return render_template("admin/forbidden.html", message=None), 403


@bp.app_context_processor
def _nav() -> dict:
    """``show_admin``: whether the nav offers 管理 to the signed-in user."""
    return {"show_admin": engine_admin.is_admin(g.get("actor"))}


def _page() -> int:
    try:
        return min(max(int(request.args.get("page") or 1), 1), 100_000)
    except ValueError:
        return 1


def _notices() -> list[str]:
    return get_flashed_messages(category_filter=["admin"])


@bp.get("")
@login_required
def home():
    return redirect(url_for(".users"))


# --- users -----------------------------------------------------------------------------------------

@bp.get("/users")
@login_required
def users():
    q = (request.args.get("q") or "").strip()[:64]
    page = _page()
    with xw().db.read() as s:
        rows, total = engine_admin.list_users(s, g.actor, text=q, page=page)
    pages = max((total + engine_admin.PER_PAGE - 1) // engine_admin.PER_PAGE, 1)
    return render_template("admin/users.html", rows=rows, total=total, page=page, pages=pages, q=q,
                           keep={"q": q} if q else {}, notices=_notices(), now=audit.db_time())


def _role_choices(orgs) -> list[dict]:
    """(org, roles that fit it) for the organizations in the area."""
    return [{"org": o, "roles": engine_admin.roles_for(o.kind)} for o in orgs]


@bp.route("/users/new", methods=["GET", "POST"])
@login_required
def new_user():
    with xw().db.read() as s:
        orgs = engine_admin.scope_orgs(s, g.actor)
    values = {k: (request.form.get(k) or "").strip() for k in ("username", "display_name", "role", "org")}
    if "@" in values["role"] and not values["org"]:  # accept role@ORG in one field too
        values["role"], values["org"] = values["role"].split("@", 1)
    errors: dict[str, str] = {}
    message = None
    if request.method == "POST":
        password = request.form.get("password") or ""
        confirm = request.form.get("confirm") or ""
        if password != confirm:
            errors["confirm"] = "两次输入的密码不一致 / the passwords do not match"
        else:
            try:
                xw().write(engine_admin.create_user, g.actor, values["username"], values["display_name"], password,
                           values["role"], values["org"])
            except InvalidData as exc:
                errors = {k: exc.message for k in exc.errors} or {"__all__": exc.message}
                message = exc.message
            else:
                flash(_("已创建用户“%(name)s”。", name=values["username"]), "admin")
                return redirect(url_for(".user", username=values["username"]))
        message = message or next(iter(errors.values()))
    return render_template("admin/user_new.html", orgs=orgs, choices=_role_choices(orgs), values=values,
                           errors=errors, message=message, roles=catalogue.roles()), 422 if errors else 200


def _user_page(username: str, *, errors: dict | None = None, form: str | None = None,
               values: dict | None = None, status: int = 200):
    with xw().db.read() as s:
        row = engine_admin.user_in_scope(s, g.actor, username)
        orgs = engine_admin.scope_orgs(s, g.actor)
        facts = engine_admin.user_facts(s, username)
        open_sessions, waiting = engine_admin.sign_in_state(s, facts.id, username)
    locked = row.locked_until is not None and row.locked_until > audit.db_time()
    blocked = None
    if username == g.user.username:
        blocked = _("这是您本人的账户:不能在管理页面修改自己的账户或角色,请由上级管理员办理。")
    elif not row.manageable:
        blocked = _("该用户还在您的管辖范围外任职,只能由共同的上级管理员修改。")
    return render_template("admin/user.html", row=row, facts=facts, locked=locked, blocked=blocked,
                           open_sessions=open_sessions, waiting=waiting,
                           choices=_role_choices(orgs), errors=errors or {}, form=form, values=values or {},
                           notices=_notices(), roles=catalogue.roles()), status


@bp.get("/users/<username>")
@login_required
def user(username: str):
    return _user_page(username)


def _change(username: str, form: str, action, done: str, values: dict | None = None):
    """Run an administrative change; on invalid input show the user page with the error (422)."""
    try:
        xw().write(action)
    except InvalidData as exc:
        return _user_page(username, errors={form: exc.message}, form=form, values=values, status=422)
    flash(done, "admin")
    return redirect(url_for(".user", username=username))


@bp.post("/users/<username>/roles")
@login_required
def grant(username: str):
    role = (request.form.get("role") or "").strip()
    org = (request.form.get("org") or "").strip()
    if "@" in role and not org:  # one select offering role@org pairs
        role, org = role.split("@", 1)
    return _change(username, "grant", lambda s: engine_admin.grant_role(s, g.actor, username, role, org),
                   _("已授予角色:%(role)s@%(org)s。", role=_role_label(role), org=org), {"role": role, "org": org})


@bp.post("/users/<username>/roles/revoke")
@login_required
def revoke(username: str):
    role = (request.form.get("role") or "").strip()
    org = (request.form.get("org") or "").strip()
    return _change(username, "revoke", lambda s: engine_admin.revoke_role(s, g.actor, username, role, org),
                   _("已撤销角色:%(role)s@%(org)s。", role=_role_label(role), org=org))


@bp.post("/users/<username>/password")
@login_required
def password(username: str):
    new = request.form.get("password") or ""
    if new != (request.form.get("confirm") or ""):
        with xw().db.read() as s:
            engine_admin.manageable_user(s, g.actor, username)
        return _user_page(username, errors={"password": "两次输入的密码不一致 / the passwords do not match"},
                          form="password", status=422)
    return _change(username, "password", lambda s: engine_admin.reset_password(s, g.actor, username, new),
                   _("已重置密码;该用户的已登录会话随即失效。"))


@bp.post("/users/<username>/sessions/end")
@login_required
def end_sessions(username: str):
    """Sign the user out everywhere: every open session ends at once (audited)."""
    return _change(username, "sessions", lambda s: engine_admin.sign_out_everywhere(s, g.actor, username),
                   _("已让该用户在所有设备上退出登录。"))


@bp.post("/users/<username>/active")
@login_required
def active(username: str):
    sent = request.form.get("active")
    value = sent == "1"

    def action(s):
        if sent not in ("0", "1"):
            engine_admin.manageable_user(s, g.actor, username)
            raise InvalidData("请选择停用或启用 / choose to deactivate or reactivate", {"active": "required"})
        engine_admin.set_active(s, g.actor, username, value)

    return _change(username, "active", action,
                   _("已恢复启用该用户。") if value else _("已停用该用户:其不能再登录,已登录的会话随即失效。"))


def _role_label(key: str) -> str:
    from webui.filters import role_zh

    return role_zh(key)


# --- parameters ------------------------------------------------------------------------------------

@bp.route("/params", methods=["GET", "POST"])
@login_required
def params():
    with xw().db.read() as s:
        orgs = engine_admin.scope_orgs(s, g.actor)
    code = (request.values.get("org") or (orgs[0].code if orgs else "")).strip()
    q = (request.values.get("q") or "").strip()[:60]
    errors: dict[str, str] = {}
    sent: dict[str, str] = {}
    if request.method == "POST":
        key = (request.form.get("key") or "").strip()
        value = (request.form.get("value") or "").strip()
        try:
            if request.form.get("action") == "reset":
                changed = xw().write(engine_admin.reset_parameter, g.actor, code, key)
                message = _("已取消本级设置:%(key)s(改用上级或默认值)。", key=key) if changed else \
                    _("本级未设置 %(key)s,无需恢复。", key=key)
            else:
                xw().write(engine_admin.set_parameter, g.actor, code, key, value)
                message = _("已设置 %(key)s = %(value)s。", key=key, value=value)
        except InvalidData as exc:
            errors[key or "__all__"] = exc.message
            sent[key] = value
        else:
            flash(message, "admin")
            return redirect(url_for(".params", org=code, q=q or None) + f"#p-{key}")
    with xw().db.read() as s:
        org = engine_admin.org_in_scope(s, g.actor, code) if code else None
        rows = engine_admin.parameter_rows(s, org) if org is not None else []
        chain = [(o.code, o.name, o.kind) for o in reversed(directory.ancestors(s, org))] if org is not None else []
    if q:
        low = q.lower()
        rows = [r for r in rows if low in r["key"].lower() or q in r["param"].label
                or any(q in name or low in pid.lower() for pid, name in r["param"].procedures)]
    return render_template("admin/params.html", orgs=orgs, org=org, rows=rows, q=q, errors=errors, sent=sent,
                           chain=chain, notices=_notices()), 422 if errors else 200


# --- the system chain ------------------------------------------------------------------------------

@bp.get("/audit")
@login_required
def audit_log():
    page = _page()
    total, events, report, head, names = xw().read(engine_admin.system_chain_page, page, AUDIT_PER_PAGE)
    entries = xw().read(engine_admin.system_chain_words, events, current_language())
    pages = max((total + AUDIT_PER_PAGE - 1) // AUDIT_PER_PAGE, 1)
    return render_template("admin/audit.html", events=events, entries=entries, total=total, page=page, pages=pages,
                           report=report, head=head, names=names)
