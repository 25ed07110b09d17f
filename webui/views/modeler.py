"""流程图编辑器: the bpmn-js modeler page for township and district staff.

bpmn-js comes from npm (``package.json``; ``make install`` copies its dist files into the gitignored
``webui/static/vendor/bpmn-js/``). Our own code is in ``webui/static/modeler/`` (plain ES modules, no
build step): the Chinese ``translate`` service, the ``xw:`` moddle descriptor and a small properties
panel. The page holds no inline script; it reads its data from ``data-*`` attributes and the JSON
endpoints below, so only this page's response relaxes the app's CSP to ``script-src 'self'``.

* ``GET  /procedures/<id>/modeler/data.json`` — the draft (or latest version) XML, its revision, the
  roles of the edition, field types and step kinds;
* ``POST /procedures/<id>/modeler/save`` — ``{"xml", "revision"}`` saved as the draft
  (:func:`engine.services.editing.save_draft`); 409 with the message when someone saved in between;
* ``POST /procedures/<id>/modeler/check`` — ``{"expression", "fields", "params"}``: is a gateway
  condition a safe expression over existing form fields and declared parameters?

POSTs carry the session's CSRF token in the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, g, jsonify, make_response, render_template, request, url_for

from engine.core import catalogue
from engine.services import editing
from engine.core.errors import Conflict, Forbidden, XiaoweiError
from engine.core.expressions import ExpressionError, compile_expression
from engine.core.lint import lint_bytes

from . import table_form as tf
from .procedures import editing_refusal
from webui.i18n import gettext as _
from webui.i18n import lang_part
from webui.security import csrf_token, login_required, xw

bp = Blueprint("modeler", __name__)
VENDOR = Path(__file__).resolve().parents[1] / "static" / "vendor" / "bpmn-js"
MODELER_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
               "font-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
MAX_XML = 2 * 1024 * 1024


def _check_edit(procedure_id: str) -> None:
    if g.actor is None or not editing.is_editor(g.actor):
        raise Forbidden("流程图编辑器只对镇(街道)工作人员和区级管理员开放 / only township and district staff edit diagrams",
                        action="edit_procedure")
    with xw().db.read() as s:
        exists, owner = editing.owner_of(s, procedure_id)
        if not exists:
            abort(404)
        if not editing.may_edit(s, g.actor, owner):
            raise Forbidden(editing_refusal(s, procedure_id), action="edit_procedure")


def vendor_ready() -> bool:
    return (VENDOR / "bpmn-modeler.production.min.js").is_file()


@bp.get("/procedures/<procedure_id>/modeler")
@login_required
def page(procedure_id: str):
    _check_edit(procedure_id)
    with xw().db.read() as s:
        draft = editing.get_draft(s, procedure_id)
        name = procedure_id
        if draft is not None:
            name = editing.definition_of(draft.bpmn_xml).name or procedure_id
        else:
            name = editing.definition_of(editing.latest_version(s, procedure_id).bpmn_xml).name or procedure_id
    shown_id, _sep, variant = procedure_id.partition("@")  # a township variant: B-PUR-02@SFZ
    response = render_template("procedures/modeler.html", procedure_id=procedure_id, name=name, shown_id=shown_id,
                               variant=bool(variant),
                               ready=vendor_ready(), csrf=csrf_token(),
                               data_url=url_for("modeler.data", procedure_id=procedure_id),
                               save_url=url_for("modeler.save", procedure_id=procedure_id),
                               check_url=url_for("modeler.check", procedure_id=procedure_id),
                               show_url=url_for("procedures.show", procedure_id=procedure_id))
    resp = make_response(response)
    resp.headers["Content-Security-Policy"] = MODELER_CSP
    return resp


@bp.get("/procedures/<procedure_id>/modeler/data.json")
@login_required
def data(procedure_id: str):
    _check_edit(procedure_id)
    with xw().db.read() as s:
        draft = editing.get_draft(s, procedure_id)
        if draft is not None:
            xml, revision, source = draft.bpmn_xml, draft.revision, f"草稿第{draft.revision}稿"
        else:
            version = editing.latest_version(s, procedure_id)
            xml, revision, source = version.bpmn_xml, 0, f"第{version.version}版(保存后成为草稿)"
    try:
        edition = editing.definition_of(xml).edition or "village"
    except (ValueError, XiaoweiError):
        edition = "village"
    roles = tf.roles_for(edition)
    return jsonify(procedure_id=procedure_id, xml=xml, revision=revision, source=source,
                   roles=[{"key": k, "zh": v} for k, v in roles.items()],
                   all_roles={k: r.zh for k, r in catalogue.roles().items()},
                   kinds=[{"key": k, "zh": v} for k, v in tf.KIND_ZH.items()],
                   field_types=[{"key": k, "zh": v} for k, v in tf.FIELD_TYPE_ZH.items()],
                   outcomes=[{"key": "completed", "zh": "办结"}, {"key": "rejected", "zh": "未通过"},
                             {"key": "terminated", "zh": "终止"}])


def _table_lost(procedure_id: str, xml: bytes) -> str:
    """Why saving ``xml`` would make the 任务单 impossible when the current draft (or version) still
    has one; "" when nothing is lost."""
    from engine.bpmn.reverse import table_from_bpmn

    with xw().db.read() as s:
        draft = editing.get_draft(s, procedure_id)
        if draft is not None:
            current, had_table = draft.bpmn_xml, bool(draft.step_table)
        else:
            version = editing.latest_version(s, procedure_id)
            current = version.bpmn_xml
            had_table = editing.saved_step_table(s, procedure_id, version.content_hash) is not None
    if not had_table and table_from_bpmn(current.encode("utf-8"))[0] is None:
        return ""
    table, why = table_from_bpmn(xml)
    return "" if table is not None else why


def _problems(xml: bytes) -> list[dict]:
    return [p.to_dict() for p in lint_bytes(xml, "草稿").problems]


@bp.post("/procedures/<procedure_id>/modeler/save")
@login_required
def save(procedure_id: str):
    _check_edit(procedure_id)
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("xml"), str) or not body["xml"].strip():
        return jsonify(error="invalid", message=_("没有收到流程图内容。")), 422
    revision = body.get("revision")
    if not isinstance(revision, int) or isinstance(revision, bool) or revision < 0:
        return jsonify(error="invalid", message=_("缺少草稿版本号(revision)。")), 422
    xml = body["xml"].encode("utf-8")
    if len(xml) > MAX_XML:
        return jsonify(error="too_large", message=_("流程图超过 2 MB。")), 413
    if body.get("confirm_table_loss") is not True:
        lost = _table_lost(procedure_id, xml)
        if lost:  # said before saving, not after: nothing is saved until the user confirms
            return jsonify(needs_confirm=True, saved=False,
                           message=_("保存后将无法还原为任务单:%(reason)s。仍要保存吗?", reason=lost))
    try:
        draft = xw().write(editing.save_draft, procedure_id, xml, username=g.user.username,
                           expected_revision=revision, source="流程图编辑器")
        new_revision = draft.revision
    except Conflict as exc:
        return jsonify(error="conflict", message=lang_part(exc.message),
                       current_revision=exc.details.get("current_revision")), 409
    except XiaoweiError as exc:
        return jsonify(error="invalid", message=lang_part(exc.message)), 422
    problems = _problems(xml)
    errors = [p for p in problems if p["severity"] == "error"]
    message = _("已保存为草稿第%(n)s稿。", n=new_revision) + (_("校验通过,可以发布。") if not errors else
                                                          _("还有 %(n)s 处错误,修改后才能发布。", n=len(errors)))
    return jsonify(ok=True, revision=new_revision, message=message, problems=problems)


@bp.post("/procedures/<procedure_id>/modeler/check")
@login_required
def check(procedure_id: str):
    _check_edit(procedure_id)
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("expression"), str):
        return jsonify(error="invalid", message=_("没有收到条件。")), 422
    text = body["expression"].strip()
    fields = {str(f) for f in body.get("fields") or [] if isinstance(f, str)}
    params = {str(p) for p in body.get("params") or [] if isinstance(p, str)}
    if not text:
        return jsonify(ok=True, message=_("没有条件(默认出口或无条件连线)。"))
    try:
        expr = compile_expression(text)
    except ExpressionError as exc:
        return jsonify(ok=False, message=_("条件不安全或有误:%(reason)s", reason=lang_part(exc.bilingual())))
    unknown = sorted(expr.names - fields)
    if unknown:
        return jsonify(ok=False, message=_("条件引用了不存在的表单字段:%(names)s", names=_("、").join(unknown)))
    missing = sorted(expr.params - params)
    if missing:
        return jsonify(ok=False, message=_("条件引用了未声明的参数:%(names)s", names=_("、").join(missing)))
    return jsonify(ok=True, message=_("条件有效。"))


__all__ = ["bp", "vendor_ready"]
