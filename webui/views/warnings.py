"""预警: the supervisors' warning inbox (by scope: a village's supervision committee sees its village,
the township discipline office its township), a warning's facts with links to the case and its trail,
and its handling (签收 / 办结 / 排除 with an opinion, 督办 for red ones). The JSON API gives the same
data under the same permissions. Rules and storage: :mod:`engine.services.supervision.warnings`."""

from __future__ import annotations

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from engine.core import directory
from engine.services.supervision import explain, rule_words, warnings
from engine.core.errors import XiaoweiError
from engine.render.narrative import language

from webui.i18n import current, gettext as _, pgettext
from webui.security import login_required, xw
from engine.services import objection_reads

bp = Blueprint("warnings", __name__)
PER_PAGE = 50
ACTIONS = {"acknowledge": "签收", "resolve": "办结", "dismiss": "排除", "supervise": "督办"}


# --- names for people, in the page's language (the engine keeps the Chinese) ---------------------------
@bp.app_template_filter("severity_name")
def severity_name(key: str, long: bool = False) -> str:
    """红 / 黄 / 蓝 (``long``: 红色 …) — Red / Yellow / Blue on English pages."""
    names = ({"red": _("红色"), "yellow": _("黄色"), "blue": _("蓝色")} if long else
             {"red": _("红"), "yellow": _("黄"), "blue": _("蓝")})
    return names.get(key, warnings.SEVERITIES.get(key, key))


@bp.app_template_filter("warning_status")
def status_name(key: str) -> str:
    names = {"raised": pgettext("warning", "待处理"), "acknowledged": pgettext("warning", "已签收"),
             "resolved": pgettext("warning", "已办结"), "dismissed": pgettext("warning", "已排除")}
    return names.get(key, warnings.STATUSES.get(key, key))


@bp.app_template_filter("warning_event")
def event_name(event_type: str) -> str:
    """The name of a handling step in a warning's history."""
    names = {"warning_acknowledged": pgettext("warning event", "签收"),
             "warning_resolved": pgettext("warning event", "办结"),
             "warning_dismissed": pgettext("warning event", "排除"),
             "warning_supervised": pgettext("warning event", "督办")}
    return names.get(event_type, event_type)


@bp.app_template_filter("rule_inspects")
def rule_inspects(rule_id: str) -> str:
    with language(current()):
        return rule_words.inspects(rule_id)


@bp.app_template_filter("rule_condition")
def rule_condition(rule_id: str) -> str:
    with language(current()):
        return rule_words.condition(rule_id)


@bp.app_template_filter("rule_name")
def rule_name(rule_id: str, fallback: str | None = None) -> str:
    """A rule's name: Chinese, or the rule's English name on an English page."""
    r = warnings.RULES.get(rule_id)
    if r is None:
        return fallback or rule_id
    return r.en if r.en and current() == "en" else r.zh


def _filters(args) -> dict:
    severity = args.get("severity") if args.get("severity") in warnings.SEVERITIES else None
    status = args.get("status") if args.get("status") in (*warnings.STATUSES, "open") else None
    rule = args.get("rule") if args.get("rule") in warnings.RULES else None
    org = (args.get("org") or "").strip()[:40] or None
    try:
        page = max(1, int(args.get("page", 1)))
    except ValueError:
        page = 1
    return {"severity": severity, "status": status, "rule": rule, "org_code": org, "page": page}


def require_reader() -> None:
    if not warnings.may_read(g.actor):
        abort(403)


def warning_list(args, *, words: bool = False, limit: int = PER_PAGE) -> tuple[dict, dict]:
    """A page of the inbox (``words``: each warning told in words, for the pages)."""
    f = _filters(args)
    page = f.pop("page")
    with xw().db.read() as s:
        if f["org_code"]:
            try:
                org = directory.get_org(s, f["org_code"])
            except XiaoweiError:
                abort(404)
            if org.id not in warnings.visible_orgs(s, g.actor):
                abort(403)
        data = warnings.list_warnings(s, actor=g.actor, limit=limit, offset=(page - 1) * limit, **f)
        if words:
            with language(current()):
                explain.explain_many(s, data["warnings"])
    return data, {**f, "page": page}


def _villages() -> list[tuple[str, str]]:
    return xw().read(warnings.visible_villages, g.actor)


@bp.get("/warnings")
@login_required
def index():
    require_reader()
    data, f = warning_list(request.args, words=True)
    pages = max(1, -(-data["total"] // PER_PAGE))
    # 村民异议 beside the warnings: the same inbox a supervisor checks, its own section (an objection is
    # answered by verifying it in its case, not by 签收/办结 like a warning). Page 1 only.
    return render_template("warnings/index.html", data=data, f=f, pages=pages, rules=warnings.RULES,
                           severities=warnings.SEVERITIES, statuses=warnings.STATUSES, villages=_villages(),
                           objections=xw().read(objection_reads.inbox, g.actor) if f["page"] == 1 else [])


def _may_handle(org_code: str) -> bool:
    with xw().db.read() as s:
        org = directory.get_org(s, org_code)
        return bool(g.actor.roles_at(directory.chain_ids(s, org.id)) & warnings.HANDLER_ROLES)


def _shown(warning_id: int) -> dict:
    """The warning with its words (who, which case, the facts, the submissions it rests on)."""
    w = xw().show_warning(warning_id, g.user.username)
    with language(current()):
        return xw().read(explain.explain, w)


@bp.get("/warnings/<int:warning_id>")
@login_required
def show(warning_id: int):
    require_reader()
    w = _shown(warning_id)
    return render_template("warnings/show.html", w=w, rule=warnings.RULES.get(w["rule"]), actions=ACTIONS,
                           may_handle=_may_handle(w["org"]), error=None, opinion="")


@bp.post("/warnings/<int:warning_id>/handle")
@login_required
def handle(warning_id: int):
    require_reader()
    w = _shown(warning_id)
    if not _may_handle(w["org"]):
        abort(403)
    action = request.form.get("action", "")
    opinion = request.form.get("opinion", "")
    try:
        if action == "supervise":
            xw().supervise_warning(warning_id, g.user.username, opinion)
        elif action in warnings.TRANSITIONS:
            xw().handle_warning(warning_id, action, g.user.username, opinion)
        else:
            abort(422)
    except XiaoweiError as exc:
        if exc.status == 403:
            raise
        return render_template("warnings/show.html", w=w, rule=warnings.RULES.get(w["rule"]), actions=ACTIONS,
                               may_handle=True, error=exc.message, opinion=opinion), exc.status
    return redirect(url_for("warnings.show", warning_id=warning_id))


@bp.app_context_processor
def _nav() -> dict:
    """``show_warnings``: whether the nav offers 预警 to the signed-in user."""
    return {"show_warnings": warnings.may_read(g.get("actor"))}
