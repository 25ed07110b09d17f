"""流程管理 for township and district staff: the procedures with their versions and drafts, the
Chinese comparison of any two versions (with side-by-side diagrams, changes marked), validating and
publishing a draft with a note and an effective date, migrating running cases case by case, and
importing BPMN files from other modelers. Server-side forms, no JavaScript.

Township staff see the library and edit only their township's procedures; district staff edit all
(:func:`engine.services.editing.may_edit`). Every save, publish and migration is audited by the engine.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import Blueprint, abort, g, redirect, render_template, request, url_for

from engine.core import audit, catalogue
from engine.core.errors import Forbidden
from engine.services import editing, variants
from engine.render.diagram import DiagramError, render_svg_bytes
from engine.core.errors import Conflict, XiaoweiError
from engine.core.lint import lint_bytes

from webui.i18n import gettext as _
from webui.security import login_required, xw

bp = Blueprint("procedures", __name__)


def _require_editor() -> None:
    if g.actor is None or not editing.is_editor(g.actor):
        raise Forbidden("流程管理只对镇(街道)工作人员和区级管理员开放 / procedures are managed by township and "
                        "district staff", action="edit_procedure")


def _may_edit(session, procedure_id: str) -> bool:
    _exists, owner = editing.owner_of(session, procedure_id)
    return editing.may_edit(session, g.actor, owner)


@bp.get("/procedures")
@login_required
def index():
    _require_editor()
    rows, new_drafts = xw().read(editing.library_rows, g.actor)
    marks = xw().read(variants.library_marks, g.actor)  # 镇(街道)变体 and 上级版本已更新
    for row in rows:
        row["owner"] = row["owner"] or _("区级事项库")
        row["variants"] = marks.get(row["id"], [])
    return render_template("procedures/index.html", rows=rows, new_drafts=new_drafts,
                           categories=catalogue.categories())


def _svg(xml: str, marked: set[str]) -> str | None:
    try:
        return render_svg_bytes(xml.encode("utf-8"), heat={e: 1.0 for e in marked})
    except DiagramError:
        return None


def _page(procedure_id: str, *, status: int = 200, **extra):
    with xw().db.read() as s:
        versions = editing.versions_of(s, procedure_id)
        draft = editing.get_draft(s, procedure_id)
        if not versions and draft is None:
            abort(404)
        editable = _may_edit(s, procedure_id)
        proc = editing.get_procedure(s, procedure_id)
        name = proc.name if proc else procedure_id
        problems, draft_changes, draft_svg = [], None, None
        if draft is not None and editable:
            result = lint_bytes(draft.bpmn_xml.encode("utf-8"), f"{procedure_id} 草稿")
            problems = result.problems
            if versions:
                try:
                    draft_changes = editing.diff_draft(s, procedure_id)
                except (ValueError, XiaoweiError):
                    draft_changes = None
            draft_svg = _svg(draft.bpmn_xml, {p.element for p in problems})
        numbers = [v.version for v in versions]
        comparison, svgs = None, None
        v1, v2 = request.args.get("v1", type=int), request.args.get("v2", type=int)
        if v1 in numbers and v2 in numbers:
            comparison = editing.diff_versions(s, procedure_id, v1, v2)
            by_number = {v.version: v for v in versions}
            svgs = (_svg(by_number[v1].bpmn_xml, comparison.marked_old()),
                    _svg(by_number[v2].bpmn_xml, comparison.marked_new()))
        running = editing.running_cases(s, procedure_id) if editable else []
        local = editing.local_parameters(s, g.actor, proc)
        review = editing.review_notes(s, proc, draft if editable else None)
        variant_list = variants.variants_of(s, procedure_id, g.actor)  # 镇(街道)变体: all for the district
        view = [{"version": v.version, "published_at": audit.iso(v.published_at)[:16].replace("T", " "),
                 "published_by": v.published_by, "note": v.note, "change_summary": v.change_summary,
                 "effective_from": audit.iso(v.effective_from)[:10] if v.effective_from else ""} for v in versions]
    return render_template("procedures/show.html", procedure_id=procedure_id, name=name, versions=view,
                           draft=draft, editable=editable, problems=problems, draft_changes=draft_changes,
                           draft_svg=draft_svg, comparison=comparison, svgs=svgs, v1=v1, v2=v2, running=running,
                           local=local, review=review, variant_list=variant_list, **extra), status


@bp.get("/procedures/<procedure_id>")
@login_required
def show(procedure_id: str):
    _require_editor()
    base_id, sep, org_code = procedure_id.partition("@")
    if sep:  # a township variant's key (the modeler's way back): its page
        return redirect(url_for("variants.show", procedure_id=base_id, org_code=org_code))
    return _page(procedure_id)


def _check_edit(procedure_id: str) -> None:
    _require_editor()
    with xw().db.read() as s:
        if not _may_edit(s, procedure_id):
            raise Forbidden(editing_refusal(s, procedure_id), action="edit_procedure")


def editing_refusal(s, procedure_id: str) -> str:
    """Why the user may not edit this procedure, in words that fit the editors' pages."""
    _exists, owner = editing.owner_of(s, procedure_id)
    if owner is None and editing.editable_org_ids(g.actor):
        return _("“%(id)s”属于区级事项库,由区级管理员维护。镇(街道)工作人员可以在事项页创建本镇变体,修改后发布给本镇各村使用。",
                 id=procedure_id)
    return _("只有该事项所属镇(街道)的工作人员或区级管理员可以编辑“%(id)s”。", id=procedure_id)


@bp.post("/procedures/<procedure_id>/draft")
@login_required
def start_draft(procedure_id: str):
    _check_edit(procedure_id)
    xw().write(editing.new_draft_from_version, procedure_id, username=g.user.username)
    base_id, sep, org_code = procedure_id.partition("@")
    if sep:  # a township variant: its own page
        return redirect(url_for("variants.show", procedure_id=base_id, org_code=org_code))
    return _page(procedure_id, done=_("已从最新版本创建草稿。"))


def _effective(text: str) -> datetime | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise XiaoweiError("生效日期格式应为 2026-04-01 / the effective date must look like 2026-04-01") from None
    return datetime(day.year, day.month, day.day) - timedelta(hours=8)  # midnight China time


@bp.post("/procedures/<procedure_id>/publish")
@login_required
def publish(procedure_id: str):
    _check_edit(procedure_id)
    base_id, sep, org_code = procedure_id.partition("@")
    if sep:  # a township variant is published (and checked against the district's version) on its page
        from webui.views import variants as variant_views

        return variant_views.publish(base_id, org_code)
    note = (request.form.get("note") or "").strip()[:2000]
    try:
        result = xw().write(editing.publish_draft, procedure_id, username=g.user.username, note=note,
                            effective_from=_effective(request.form.get("effective", "")),
                            expected_revision=request.form.get("revision", type=int))
    except XiaoweiError as exc:
        return _page(procedure_id, status=exc.status if exc.status != 400 else 422, error=exc.message)
    return _page(procedure_id, done=_("已发布第%(n)s版。", n=result["version"]), published=result)


@bp.post("/procedures/<procedure_id>/migrate")
@login_required
def migrate(procedure_id: str):
    _check_edit(procedure_id)
    to_version = request.form.get("to_version", type=int)
    chosen = {int(c) for c in request.form.getlist("case") if c.isdigit()}
    results = []
    with xw().db.read() as s:
        cases = [c for c in editing.running_cases(s, procedure_id) if not chosen or c["case_id"] in chosen]
    for c in cases:
        if to_version is None or c["version"] == to_version:
            continue
        try:
            xw().write(editing.migrate_case, c["case_id"], to_version, username=g.user.username)
            results.append({**c, "ok": True, "reasons": []})
        except (Conflict, XiaoweiError) as exc:
            reasons = exc.details.get("reasons") or [exc.message]
            results.append({**c, "ok": False, "reasons": list(reasons)})
    return _page(procedure_id, migration=results, to_version=to_version)


@bp.post("/procedures/import")
@login_required
def import_file():
    _require_editor()
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render_template("procedures/import.html", report=None, error=_("请选择 BPMN 文件。")), 422
    data = upload.stream.read(editing.IMPORT_MAX_BYTES + 1)
    try:
        report = xw().write(editing.import_bpmn, data, upload.filename[:100], username=g.user.username,
                            replace=request.form.get("replace") == "1")
    except XiaoweiError as exc:
        return render_template("procedures/import.html", report=None, error=exc.message), exc.status
    return render_template("procedures/import.html", report=report, error=None), (200 if report.status == "imported" else 422)


@bp.post("/procedures/import/choose")
@login_required
def import_choose():
    """Another pool of the file just imported (the report lists them)."""
    from engine.services.bpmn_import import choose_other_process

    _require_editor()
    source, process = request.form.get("from", ""), request.form.get("process", "")
    if not source or not process:
        return render_template("procedures/import.html", report=None, error=_("请选择要导入的流程。")), 422
    try:
        report = xw().write(choose_other_process, source, process, username=g.user.username)
    except XiaoweiError as exc:
        return render_template("procedures/import.html", report=None, error=exc.message), exc.status
    return render_template("procedures/import.html", report=report, error=None), (200 if report.status == "imported" else 422)


@bp.app_context_processor
def _nav() -> dict:
    actor = g.get("actor")
    return {"show_procedures": actor is not None and editing.is_editor(actor)}
