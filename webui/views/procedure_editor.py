"""任务单 (step-table editor) for township and district staff: create a procedure or edit the step
table of its draft with a server-side form (no JavaScript), add, remove and reorder rows, generate
the BPMN with the automatic swimlane layout (:func:`engine.bpmn.steptable.build_bpmn`), save it as the
draft (:func:`engine.services.editing.save_draft` with the revision the editor started from) and show the
problems in Chinese next to the rows they concern.

A save based on an older revision is refused by the engine; the page then shows the submitted
table again with the message, so nothing typed is lost.
"""

from __future__ import annotations

import json

from flask import Blueprint, abort, g, render_template, request, url_for

from engine.core import catalogue
from engine.services import editing
from engine.core.errors import Conflict, Forbidden, XiaoweiError
from engine.core.lint import lint_bytes
from engine.bpmn.steptable import TABLES_DIR, StepTableError, build_bpmn, load_table

from . import table_form as tf
from .procedures import editing_refusal
from webui.i18n import current as current_lang
from webui.i18n import gettext as _
from webui.i18n import lang_part
from webui.security import login_required, xw

bp = Blueprint("procedure_editor", __name__)


def _require_editor() -> None:
    if g.actor is None or not editing.is_editor(g.actor):
        raise Forbidden("任务单只对镇(街道)工作人员和区级管理员开放 / only township and district staff edit step tables",
                        action="edit_procedure")


def _check_edit(procedure_id: str) -> None:
    _require_editor()
    with xw().db.read() as s:
        exists, owner = editing.owner_of(s, procedure_id)
        if not exists:
            abort(404)
        if not editing.may_edit(s, g.actor, owner):
            raise Forbidden(editing_refusal(s, procedure_id), action="edit_procedure")


def _library_table(procedure_id: str, xml: str) -> dict | None:
    """The library's step table of a procedure when it still generates exactly ``xml``."""
    path = TABLES_DIR / f"{procedure_id}.yaml"
    if "/" in procedure_id or not path.is_file():
        return None
    try:
        table = load_table(path)
        return table if build_bpmn(table).decode("utf-8") == xml else None
    except StepTableError:
        return None


def _rebuilt(xml: str) -> dict | None:
    """The step table rebuilt from a diagram whose structure allows it (:mod:`engine.bpmn.reverse`)."""
    from engine.bpmn.reverse import table_from_bpmn

    return table_from_bpmn(xml.encode("utf-8"))[0]


def _load(procedure_id: str) -> tuple[tf.Sheet | None, str | None, str]:
    """(sheet, draft XML, note) of a procedure's draft (or latest version when it has no draft)."""
    with xw().db.read() as s:
        draft = editing.get_draft(s, procedure_id)
        if draft is not None:
            if draft.step_table:
                return tf.sheet_from_table(json.loads(draft.step_table), draft.revision), draft.bpmn_xml, ""
            table = _library_table(procedure_id, draft.bpmn_xml) or _rebuilt(draft.bpmn_xml)
            if table is not None:
                return tf.sheet_from_table(table, draft.revision), draft.bpmn_xml, ""
            return None, draft.bpmn_xml, "draft"
        version = editing.latest_version(s, procedure_id)
        table = (editing.saved_step_table(s, procedure_id, version.content_hash)
                 or _library_table(procedure_id, version.bpmn_xml) or _rebuilt(version.bpmn_xml))
        if table is not None:
            return tf.sheet_from_table(table, 0), None, _("以第%(n)s版为基础;保存后成为草稿。", n=version.version)
        return None, None, "version"


def _lint(sheet: tf.Sheet, xml: bytes, found: tf.Findings) -> list:
    result = lint_bytes(xml, f"{sheet.id} 任务单")
    flows = {}
    if result.definition is not None:
        flows = {f.id: f.source for f in result.definition.flows.values()}
    for p in result.problems:
        row = tf.row_of_element(sheet, p.element, flows)
        problem = p.en if p.en and current_lang() == "en" else p.zh
        text = problem if p.severity == "error" else _("提示:%(problem)s", problem=problem)
        if row is None:
            found.table.append(text)
        else:
            found.row(row, text)
    return result.problems


def _render(sheet: tf.Sheet, *, new: bool, status: int = 200, found: tf.Findings | None = None,
            done: str = "", error: str = "", note: str = "", checked: bool = False):
    return render_template(
        "procedures/table.html", sheet=sheet, new=new, found=found or tf.Findings(), done=done, error=error,
        note=note, checked=checked, roles=tf.roles_for(sheet.edition), kinds=tf.KIND_ZH,
        field_types=tf.FIELD_TYPE_ZH, time_units=tf.TIME_UNITS, editions=tf.EDITION_ZH, categories=catalogue.categories(),
        edit_key=g.get("edit_key") or sheet.id, variant=bool(g.get("edit_key", "").partition("@")[2]),
        action_url=url_for("procedure_editor.new") if new else url_for("procedure_editor.table",
                                                                        procedure_id=g.get("edit_key") or sheet.id)), status


def _handle(sheet: tf.Sheet, *, new: bool):
    action = (request.form.get("action") or "").strip()
    if not action or "nsteps" not in request.form:
        return _render(sheet, new=new, status=422, error=_("表单不完整,请从任务单页面提交。"))
    if action not in ("save", "check"):
        note = tf.apply_action(sheet, action)
        if note is None:
            return _render(sheet, new=new, status=422, error=_("无法执行该操作。"))
        return _render(sheet, new=new, done=note)
    found = tf.check_rows(sheet, new=new)
    if new and not found.table:
        with xw().db.read() as s:
            if editing.owner_of(s, sheet.id)[0]:
                found.table.append(_("事项编号“%(id)s”已存在,请换一个编号,或在流程管理中打开该事项。", id=sheet.id))
    if found:
        return _render(sheet, new=new, status=422, found=found,
                       error=_("任务单有需要修改的地方(见标红的行),未保存。") if action == "save" else "")
    table = tf.table_from_sheet(sheet)
    try:
        xml = build_bpmn(table)
    except StepTableError as exc:
        message = str(exc).split(": ", 1)[-1]
        row = next((i for i, r in enumerate(sheet.rows) if f"'{r.id}'" in message), None)
        text = _("任务单无法生成流程图:%(reason)s", reason=lang_part(message))
        found.table.append(text) if row is None else found.row(row, text)
        return _render(sheet, new=new, status=422, found=found,
                       error=_("任务单无法生成流程图,未保存。") if action == "save" else "")
    problems = _lint(sheet, xml, found)
    errors = [p for p in problems if p.severity == "error"]
    if action == "check":
        return _render(sheet, new=new, found=found, checked=True,
                       done="" if errors else _("校验通过:可以保存,保存后即可在流程管理页发布。"))
    try:
        revision = xw().write(editing.save_step_table_draft, g.get("edit_key") or sheet.id, xml, table, username=g.user.username,
                              expected_revision=sheet.revision)
    except Conflict as exc:
        return _render(sheet, new=new, status=409, found=found, error=_("%(reason)s 下面仍是您提交的任务单,可以复制保留后重新打开草稿。",
                                                             reason=lang_part(exc.message)))
    except XiaoweiError as exc:
        return _render(sheet, new=new, status=exc.status if exc.status != 400 else 422, found=found,
                       error=lang_part(exc.message))
    sheet.revision = revision
    done = _("已保存为草稿第%(n)s稿。", n=revision) + (_("校验通过,可以发布。") if not errors else
                                                    _("还有 %(n)s 处错误,修改后才能发布。", n=len(errors)))
    return _render(sheet, new=False, found=found, done=done, checked=True)


@bp.route("/procedures/new", methods=["GET", "POST"])
@login_required
def new():
    _require_editor()
    if request.method == "GET":
        return _render(tf.new_sheet(), new=True)
    return _handle(tf.sheet_from_form(request.form), new=True)


@bp.route("/procedures/<procedure_id>/table", methods=["GET", "POST"])
@login_required
def table(procedure_id: str):
    _check_edit(procedure_id)
    g.edit_key = procedure_id  # a township variant (B-PUR-02@SFZ) edits the table of B-PUR-02 under its key
    if request.method == "POST":
        sheet = tf.sheet_from_form(request.form)
        sheet.id = procedure_id.partition("@")[0]
        return _handle(sheet, new=False)
    sheet, xml, note = _load(procedure_id)
    if sheet is None:
        return render_template("procedures/table_unavailable.html", procedure_id=procedure_id, reason=note)
    found = tf.Findings()
    if xml is not None:
        _lint(sheet, xml.encode("utf-8"), found)
    return _render(sheet, new=False, found=found, note=note, checked=xml is not None)


__all__ = ["bp"]
