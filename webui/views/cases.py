"""A case: the step page (status, flowchart, forms of the steps the user can act on), the audit trail
and its JSON export, the case list and starting a case."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Mapping

from flask import (Blueprint, Response, abort, flash, g, get_flashed_messages, redirect, render_template, request,
                   url_for)

from engine.core import attachments as engine_attachments
from engine.core import cases as engine_cases
from engine.core import catalogue, forms, procedures
from engine.render import narrative
from engine.render import steplist
from engine.render.diagram import path_svg
from engine.core.errors import Conflict, EngineIncident, Forbidden, InvalidData, NotFound, XiaoweiError

from webui import filters
from engine.core import privacy
from engine.services import dossier, lookups, objection_reads, reads
from engine.services import public as engine_public
from . import uploads
from webui.i18n import current as current_language
from webui.security import login_required, xw

if TYPE_CHECKING:
    from storage.models import Case

bp = Blueprint("cases", __name__)

PROXY_KEYS = ("on_behalf_of", "proxy_reason")


def guard(case_id: int, action: str) -> Case:
    """The case if the user may see it; 404 when there is none; 403 (recorded in its trail) otherwise."""
    with xw().db.read() as s:
        case = lookups.case(s, case_id)
        if case is None:
            abort(404)
        ok = reads.visible(s, g.actor, case.org_id)
        org = lookups.org(s, case.org_id)
    if not ok:
        xw().write(engine_cases.record_denied, case_id, g.user.username, action,
                   "不在本人所属机构范围内 / outside the user's organizations",
                   {"org": org.code if org else None, "path": request.path[:200]})
        abort(403)
    return case


def _text_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def case_view(case_id: int, *, values: Mapping[str, Mapping[str, str]] | None = None,
              errors: Mapping[str, Mapping[str, str]] | None = None,
              files: Mapping[str, list[dict]] | None = None) -> dict:
    """Everything the step page shows: header, flowchart, and a form per step the user can act on."""
    info = xw().show_case(case_id)
    history = info["history"]
    with xw().db.read() as s:
        case = lookups.case(s, case_id)
        d = reads.definition(s, case.procedure_version_id)
        initial = reads.initial_values(history)
        actions, others = [], []
        for item in info["current_steps"]:
            step = d.steps.get(item["step_id"])
            how = reads.can_act(s, g.actor, case.org_id, step, item["role"]) if case.status == "running" else None
            entry = {"item": item, "step": step, "how": how}
            if how and step is not None:
                held = reads.roles_here(s, g.actor, case.org_id)
                entry["proxy_allowed"] = bool(step.proxy and held & catalogue.PROXY_ROLES)
                entry["proxy_required"] = how == "proxy"
                sent = (values or {}).get(step.id)
                entry["vals"] = dict(sent) if sent is not None else \
                    {f.name: _text_value(initial.get(f.name, f.default)) for f in step.fields}
                public_intake(s, entry, case.id, d, step, history, sent is None)
                entry["errors"] = dict((errors or {}).get(step.id, {}))
                entry["uploads"] = list((files or {}).get(step.id, []))
                known = {f.name for f in step.fields} | set(PROXY_KEYS) | {uploads.FIELD}
                entry["other_errors"] = [m for k, m in entry["errors"].items() if k not in known]
                actions.append(entry)
            else:
                others.append(entry)
    with narrative.language(current_language()):
        file = xw().dossier(case_id, g.user.username)
        params = narrative.case_params(history, d)
        for entry in actions:
            entry["judgement"] = dossier.judgement(d, entry["step"].id, file, params, history, info["timers"])
    nodes, flows = reads.path_of(d, history)
    current = {i["step_id"] for i in info["current_steps"]} | {t["node"] for t in info["timers"]}
    overdue = {i["step_id"] for i in info["current_steps"] if i["overdue"]}
    svg = path_svg(d, nodes, flows, current, overdue)
    incident = xw().open_incident(case_id) if info["status"] == "running" else None
    can_retry = False
    if incident is not None and g.get("actor") is not None:
        with xw().db.read() as s:
            can_retry = bool(reads.roles_here(s, g.actor, case.org_id) & catalogue.ADMIN_ROLES)
    return {"case": info, "definition": d, "actions": actions, "others": others, "svg": svg,
            "incident": incident, "can_retry": can_retry,
            "objection_panel": xw().read(objection_reads.panel, g.actor, case_id),
            "dossier": file, "dossier_groups": dossier_groups(file),
            "focus": sorted(current), "upload_limit": engine_attachments.size_text(engine_attachments.max_bytes()),
            "path": steplist.step_path(d, nodes, current, overdue),
            "upload_max_files": engine_attachments.MAX_FILES,
            "timers": [{**t, "name": d.nodes[t["node"]].name if t["node"] in d.nodes else t["node"]}
                       for t in info["timers"]]}


def dossier_groups(file: Mapping) -> list[dict]:
    """The case file grouped by step for the page; each submission with the decisions that followed it."""
    groups = dossier.grouped(file)
    subs = sorted((s for g in groups for s in g["rounds"]), key=lambda s: s["event_seq"])
    for s in subs:
        s["decisions"] = []
    for decision in file["decisions"]:
        before = [s for s in subs if s["event_seq"] < (decision["event_seq"] or 0)]
        if before:
            before[-1]["decisions"].append(decision)
    return groups


def public_intake(session, entry: dict, case_id: int, d, step, history: list[dict], prefill: bool) -> None:
    """What the public sent that the step's role must see: objections filed during the notice period
    (objections task; objection_count prefilled) and a 码上举报's reporter and photos (first step)."""
    case = lookups.case(session, case_id)
    if step.id.endswith(engine_cases.OBJECTIONS_SUFFIX):
        entry["objections"] = objection_reads.step_objections(session, g.actor, case, d, step)
        if prefill and entry["objections"] and not entry["vals"].get("objection_count"):
            entry["vals"]["objection_count"] = str(len(entry["objections"]))
    started = next((e for e in history if e["type"] == "case_started"), None)
    if started and started["data"].get("public") and step.id in engine_public.first_steps(d):
        entry["report"] = dict(started["data"]["public"])
    # A reporter's name and phone: only to whom may know them (engine.privacy), never from the trail.
    if any(f.name in privacy.IDENTITY_FIELDS for f in step.fields):
        who = privacy.case_identities(session, g.actor, case_id)
        reporter = next((who[e["seq"]] for e in history if e["seq"] in who and who[e["seq"]]["kind"] == "report"),
                        None)
        if "report" in entry:
            entry["report"]["reporter"] = (reporter["name"] or "匿名") if reporter else "匿名"
            entry["report"]["phone"] = reporter["phone"] if reporter else ""
        if prefill:
            for name, key in privacy.IDENTITY_FIELDS.items():
                entry["vals"][name] = reporter[key] if reporter else ""


@bp.get("/cases/<int:case_id>")
@login_required
def show(case_id: int):
    guard(case_id, "view")
    return render_template("cases/show.html", **case_view(case_id), done=get_flashed_messages(category_filter=["done"]),
                           notices=get_flashed_messages(category_filter=["notice"]))


@bp.post("/cases/<int:case_id>/steps/<step_id>")
@login_required
def complete(case_id: int, step_id: str):
    case = guard(case_id, "complete")
    with xw().db.read() as s:
        d = reads.definition(s, case.procedure_version_id)
    step = d.steps.get(step_id)
    if step is None:
        abort(404)
    sent = {f.name: (request.form.get(f.name) or "").strip() for f in step.fields}
    data = {k: v for k, v in sent.items() if v != ""}
    proxy = {k: (request.form.get(k) or "").strip() for k in PROXY_KEYS}
    refs = uploads.form_refs()
    with xw().db.read() as s:
        may_act = case.status == "running" and reads.can_act(s, g.actor, case.org_id, step, step.role or "")
    try:
        # Files are stored first (content-addressed, harmless to keep), then the step is completed
        # with references to them. Someone who may not do the step stores nothing: the engine refuses it.
        files = uploads.gather(g.user.username, refs) if may_act else []
        refs = files
        result = xw().complete(case_id, step_id, g.user.username, data,
                               on_behalf_of=proxy["on_behalf_of"] or None, proxy_reason=proxy["proxy_reason"] or None,
                               attachments=files or None)
    except InvalidData as exc:
        errs = dict(exc.errors) or {forms.FORM_KEY: exc.message}
        view = case_view(case_id, values={step_id: {**sent, **proxy}}, errors={step_id: errs},
                         files={step_id: uploads.usable(refs, g.user.username)})
        return render_template("cases/show.html", **view, done=[], notices=[], failed_step=step_id), 422
    except EngineIncident as exc:
        # A condition or timer failed at run time: nothing saved, what was entered is shown again
        # (and kept on the incident in the trail); the township is warned.
        view = case_view(case_id, values={step_id: {**sent, **proxy}}, errors={step_id: {"__all__": exc.message}},
                         files={step_id: uploads.usable(refs, g.user.username)})
        return render_template("cases/show.html", **view, done=[], notices=[], failed_step=step_id,
                               incident_step=step_id), 409
    except Conflict as exc:
        flash({"kind": "conflict", "message": exc.message}, "notice")
        return redirect(url_for(".show", case_id=case_id))
    flash({"kind": "completed", "step": step.name, "status": result["status"],
           "next": [{"name": t["name"], "role": t["role"], "due_at": t["due_at"]} for t in result["tasks"]]}, "done")
    return redirect(url_for(".show", case_id=case_id))


@bp.post("/cases/<int:case_id>/retry")
@login_required
def retry(case_id: int):
    """A township or district administrator retries a case stopped by an incident, with the local
    parameters now in force (fix them first on the parameters page)."""
    guard(case_id, "retry")
    try:
        result = xw().retry_case(case_id, g.user.username)
    except Forbidden:
        abort(403)
    except Conflict as exc:  # still failing (a new incident is recorded), or nothing to retry
        flash({"kind": "conflict", "message": exc.message}, "notice")
        return redirect(url_for(".show", case_id=case_id))
    flash({"kind": "retried", "changes": result["changes"], "completed": result["completed"]}, "notice")
    return redirect(url_for(".show", case_id=case_id))


def trail_context(case: Case, case_id: int) -> dict:
    """What the trail page and its printable form show: the case, its events with the actors'
    names, the chain check, and the flowchart with the executed path, current and overdue steps."""
    info = xw().show_case(case_id)
    history = info["history"]
    with xw().db.read() as s:
        d = reads.definition(s, case.procedure_version_id)
        actors = {e["actor"] for e in history if e["actor"]}
        names = lookups.display_names(s, actors)
    reports = xw().verify(case_id)
    nodes, flows = reads.path_of(d, history)
    current = {i["step_id"] for i in info["current_steps"]} | {t["node"] for t in info["timers"]}
    svg = path_svg(d, nodes, flows, current, {i["step_id"] for i in info["current_steps"] if i["overdue"]})
    ctx = narrative.Context(definition=d, names=names, params=narrative.case_params(history, d),
                            lang=current_language())
    entries = narrative.describe_all(history, ctx)
    return {"case": info, "definition": d, "events": history, "entries": entries, "names": names,
            "focus": sorted(current), "fields": d.fields_by_name(), "verified": all(r.ok for r in reports),
            "problems": [p for r in reports for p in r.problems], "svg": svg,
            "identities": xw().read(objection_reads.identities, g.actor, case_id)}


@bp.get("/cases/<int:case_id>/trail")
@login_required
def trail(case_id: int):
    case = guard(case_id, "view_trail")
    return render_template("cases/trail.html", **trail_context(case, case_id))


@bp.get("/cases/<int:case_id>/files/<sha256>")
@login_required
def file(case_id: int, sha256: str):
    """An evidence file attached to one of this case's steps (404 for any other file)."""
    guard(case_id, "download_file")
    sha = sha256.lower()
    with xw().db.read() as s:
        ref = engine_attachments.attached_to(reads.events(s, case_id), sha)
    if ref is None:
        abort(404)
    try:
        media_type, content = xw().load_file(sha)
    except NotFound:
        abort(404)
    return uploads.file_response(ref, media_type, content)


@bp.get("/cases/<int:case_id>/trail.json")
@login_required
def trail_json(case_id: int):
    guard(case_id, "export_trail")
    body = xw().export_trail(case_id, g.user.username)
    return Response(body, mimetype="application/json",
                    headers={"Content-Disposition": f"attachment; filename=trail-{case_id}.json"})


SEARCH_KEYS = ("org", "procedure", "category", "status", "from", "to", "overdue", "amount_min", "amount_max",
               "person", "q")


def parse_case_query(args: Mapping[str, str], *, search: bool) -> tuple[reads.CaseQuery, dict, dict]:
    """The case search filters from query arguments: (query, the raw values to show, errors by key)."""
    raw = {k: (args.get(k) or "").strip()[:100] for k in SEARCH_KEYS}
    errors: dict[str, str] = {}
    q = reads.CaseQuery(mine=not search, org_code=raw["org"] or None, procedure=raw["procedure"] or None,
                        category=raw["category"] or None, status=raw["status"] or None,
                        overdue=raw["overdue"] in ("1", "on", "true"), person=raw["person"] or None,
                        text=raw["q"] or None, page=page_number(args))
    if q.status and q.status not in engine_cases.STATUS_ZH:
        errors["status"] = "未知状态 / unknown status"
        q.status = None
    for key, attr, shift in (("from", "date_from", 0), ("to", "date_to", 1)):
        if raw[key]:
            try:
                day = datetime.strptime(raw[key], "%Y-%m-%d")
            except ValueError:
                errors[key] = "日期格式应为 年-月-日,如 2026-03-01 / use YYYY-MM-DD"
                continue
            # A China calendar day starts at 16:00 UTC the day before.
            setattr(q, attr, day + timedelta(days=shift) - filters.CHINA)
    for key in ("amount_min", "amount_max"):
        if raw[key]:
            try:
                amount = Decimal(raw[key].replace(",", "").replace("元", ""))
                if not amount.is_finite() or amount < 0:
                    raise InvalidOperation
            except (InvalidOperation, ValueError):
                errors[key] = "金额应为不小于 0 的数字 / the amount must be a number ≥ 0"
                continue
            setattr(q, key, amount)
    if q.amount_min is not None and q.amount_max is not None and q.amount_min > q.amount_max:
        errors["amount_max"] = "最高金额不能小于最低金额 / the maximum is below the minimum"
        q.amount_max = None
    if q.date_from and q.date_to and q.date_from >= q.date_to:
        errors["to"] = "结束日期不能早于开始日期 / the end date is before the start date"
        q.date_to = None
    return q, raw, errors


def page_number(args: Mapping[str, str]) -> int:
    try:
        return min(max(int(args.get("page") or 1), 1), 100_000)
    except ValueError:
        return 1


@bp.get("/cases")
@login_required
def index():
    supervisor = reads.is_supervisor(g.actor)
    search = supervisor and request.args.get("scope") == "all"
    q, raw, errors = parse_case_query(request.args, search=search)
    with xw().db.read() as s:
        rows, total = reads.search_cases(s, g.actor, q)
        orgs = reads.visible_orgs(s, g.actor)
        procs = reads.procedure_choices(s)
    pages = max((total + q.per_page - 1) // q.per_page, 1)
    keep = {k: v for k, v in raw.items() if v}
    if search:
        keep["scope"] = "all"
    return render_template("cases/index.html", rows=rows, total=total, page=q.page, pages=pages, keep=keep,
                           supervisor=supervisor, search=search, filters=raw, errors=errors,
                           orgs=orgs, procedures=procs, statuses=engine_cases.STATUS_ZH,
                           categories=catalogue.categories()), 200 if not errors else 422


@bp.route("/start", methods=["GET", "POST"])
@login_required
def start():
    with xw().db.read() as s:
        # Townships too: their own procedures (T-SUP-01, a report received by phone or letter).
        orgs = reads.visible_orgs(s, g.actor, kinds=("village", "community", "township"))
    local = [o for o in orgs if o.kind != "township"]
    chosen = request.values.get("org") or ((local or orgs)[0].code if orgs else None)
    org = next((o for o in orgs if o.code == chosen), None)
    if chosen and org is None:
        abort(403 if orgs else 404)
    error = None
    if request.method == "POST" and org is not None:
        procedure_id = request.form.get("procedure") or ""
        title = (request.form.get("title") or "").strip()[:200]
        try:
            case_id = xw().start_case(procedure_id, org.code, g.user.username, {"title": title} if title else {})
        except XiaoweiError as exc:
            if isinstance(exc, NotFound):
                abort(404)
            error = {"procedure": procedure_id, "message": exc.message, "forbidden": exc.status == 403}
        else:
            flash({"kind": "started"}, "notice")
            return redirect(url_for(".show", case_id=case_id))
    groups: list[dict] = []
    if org is not None:
        edition = org.kind if org.kind in ("village", "township") else "community"
        with xw().db.read() as s:
            listed = [p for p in procedures.list_procedures(s, edition=edition)
                      if edition != "township" or p["edition"] == "township"]
            held = reads.roles_here(s, g.actor, org.id)
            details = {}
            for p in listed:
                proc = lookups.procedure(s, p["id"])
                d = reads.definition(s, proc.current_version_id)
                first = [d.steps[n] for n in engine_public.first_steps(d)]
                details[p["id"]] = {"definition": d, "concerns_person": engine_public.concerns_a_person(d), "can_start": any(
                    st.role in held or (st.proxy and held & catalogue.PROXY_ROLES) for st in first)
                    or bool(held & catalogue.ADMIN_ROLES)}
        for code, cat in catalogue.categories().items():
            items = [{**p, **details[p["id"]]} for p in listed if p["category"] == code]
            if items:
                groups.append({"code": code, "name": cat.zh, "items": items})
    status = 422 if error else 200
    return render_template("cases/start.html", orgs=orgs, org=org, groups=groups, error=error), status


