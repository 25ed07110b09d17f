"""廉情档案 (the cadre file): for supervisors (村(居)务监督委员会, 监察工作联络站, 镇纪委, 监察办公室) of
a cadre's village or above — the cases the cadre handled, steps on time and late, warnings that
involve them and how they ended, and the talks, notices and 三交底 supervisors recorded (a form
here; every record is audited in the system chain). Data: :mod:`engine.services.supervision.analysis`."""

from __future__ import annotations

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from engine.core import catalogue
from engine.services.supervision import analysis as supervision
from engine.core.errors import XiaoweiError

from webui.filters import role_zh
from webui.i18n import gettext as _
from webui.security import login_required, xw

bp = Blueprint("cadres", __name__)


@bp.app_template_filter("note_kind")
def note_kind_name(kind: str) -> str:
    """谈话 / 提醒 / 三交底 / 其他 in the page's language."""
    names = {"talk": _("谈话"), "notice": _("提醒"), "three_lists": _("三交底"), "other": _("其他")}
    return names.get(kind, supervision.NOTE_KINDS.get(kind, kind))


def _require() -> None:
    if not supervision.may_supervise(g.actor):
        abort(403)


@bp.get("/cadres")
@login_required
def index():
    _require()
    with xw().db.read() as s:
        people = supervision.list_cadres(s, g.actor)
    by_zh = {r.zh: key for key, r in catalogue.roles().items()}  # the engine lists the roles' Chinese names
    groups: dict[tuple[str, str], list] = {}
    for p in people:
        p["roles"] = [role_zh(by_zh.get(name, name)) for name in p["roles"]]
        groups.setdefault((p["org"], p["org_name"]), []).append(p)
    return render_template("cadres/index.html", groups=groups, total=len(people))


def _page(username: str, *, error: str | None = None, errors: dict | None = None, form: dict | None = None,
          status: int = 200):
    with xw().db.read() as s:
        f = supervision.cadre_file(s, g.actor, username)
    return render_template("cadres/show.html", f=f, kinds=supervision.NOTE_KINDS, error=error, errors=errors or {},
                           form=form or {}), status


@bp.get("/cadres/<username>")
@login_required
def show(username: str):
    _require()
    return _page(username)


@bp.post("/cadres/<username>/notes")
@login_required
def add_note(username: str):
    _require()
    with xw().db.read() as s:
        supervision.cadre_org(s, g.actor, username)  # 404 outside the supervisor's area
    form = {k: request.form.get(k, "") for k in ("kind", "text", "responsibilities", "problems", "risks")}
    try:
        xw().record_note(g.user.username, username, form["kind"], form["text"],
                         responsibilities=form["responsibilities"], problems=form["problems"], risks=form["risks"])
    except XiaoweiError as exc:
        if exc.status in (403, 404):
            raise
        return _page(username, error=exc.message, errors=getattr(exc, "errors", None), form=form, status=exc.status)
    return redirect(url_for("cadres.show", username=username) + "#notes")


@bp.app_context_processor
def _nav() -> dict:
    """``show_cadres``: whether the nav offers 廉情档案."""
    return {"show_cadres": supervision.may_supervise(g.get("actor"))}
