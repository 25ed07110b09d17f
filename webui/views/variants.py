"""镇(街道)变体: township staff adapt a district procedure for their villages (issue #15).

* ``GET  /procedures/<id>/variants/<township>`` — the variant: its draft (edit in the 任务单 or the
  modeler under the key ``<id>@<township>``), what lint and the district's checkpoints say, the Chinese
  comparison with the district's current version (diagrams side by side), "上级版本已更新" with the
  district's changes, the variant's versions;
* ``POST /procedures/<id>/variants/<township>`` — create (or open) the draft variant;
* ``POST …/publish`` — publish it for the township's villages; ``POST …/rebase`` — a new draft from the
  district's new version with the township's changes re-applied.

Township staff act for their own township, district editors for every township; others get a 403
that says so. The services do the work and the audit (:mod:`engine.services.variants`).
"""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, request, url_for

from engine.core.errors import Forbidden, XiaoweiError
from engine.render.diagram import DiagramError, render_svg_bytes
from engine.services import editing, variants

from webui.i18n import gettext as _
from webui.security import login_required, xw

bp = Blueprint("variants", __name__)


def _require_editor() -> None:
    if g.actor is None or not editing.is_editor(g.actor):
        raise Forbidden("只有镇(街道)工作人员和区级管理员可以制作事项的镇(街道)变体 / only township and district staff "
                        "make township variants", action="edit_variant")


def _svg(xml: str | None, marked: set[str]) -> str | None:
    if not xml:
        return None
    try:
        return render_svg_bytes(xml.encode("utf-8"), heat={e: 1.0 for e in marked})
    except DiagramError:
        return None


def _page(procedure_id: str, org_code: str, *, status: int = 200, **extra):
    data = xw().read(variants.variant_page, procedure_id, org_code, g.actor)
    against, flag = data["against"], data["upstream"]
    svgs = (_svg(data["district_xml"], against.marked_old() if against else set()),
            _svg(data["mine_xml"], against.marked_new() if against else set()))
    flag_svgs = ((_svg(flag["old_xml"], flag["comparison"].marked_old()),
                  _svg(flag["new_xml"], flag["comparison"].marked_new())) if flag else None)
    return render_template("procedures/variant.html", v=data, svgs=svgs, flag_svgs=flag_svgs,
                           edit_key=data["key"], **extra), status


@bp.get("/procedures/<procedure_id>/variants/<org_code>")
@login_required
def show(procedure_id: str, org_code: str):
    _require_editor()
    return _page(procedure_id, org_code)


@bp.post("/procedures/<procedure_id>/variants/<org_code>")
@login_required
def open_variant(procedure_id: str, org_code: str):
    _require_editor()
    xw().write(variants.open_variant, procedure_id, org_code, username=g.user.username)
    return redirect(url_for("variants.show", procedure_id=procedure_id, org_code=org_code))


@bp.post("/procedures/<procedure_id>/variants/<org_code>/publish")
@login_required
def publish(procedure_id: str, org_code: str):
    _require_editor()
    note = (request.form.get("note") or "").strip()[:2000]
    try:
        result = xw().write(variants.publish_variant, procedure_id, org_code, username=g.user.username, note=note,
                            expected_revision=request.form.get("revision", type=int))
    except XiaoweiError as exc:
        if exc.status in (403, 404):
            raise
        return _page(procedure_id, org_code, status=exc.status if exc.status != 400 else 422, error=exc.message,
                     refused=exc.details.get("problems") or [])
    return _page(procedure_id, org_code, done=_("已发布本镇第%(n)s版:本镇各村新办的事项从现在起按变体办理。", n=result["version"]),
                 published=result)


@bp.post("/procedures/<procedure_id>/variants/<org_code>/withdraw")
@login_required
def withdraw(procedure_id: str, org_code: str):
    _require_editor()
    try:
        result = xw().write(variants.withdraw_variant, procedure_id, org_code, username=g.user.username)
    except XiaoweiError as exc:
        if exc.status in (403, 404):
            raise
        return _page(procedure_id, org_code, status=exc.status if exc.status != 400 else 422, error=exc.message)
    return _page(procedure_id, org_code, done=_("已停用变体:本镇各村新办的事项改按区级第%(n)s版办理;办理中的事项不受影响。",
                                                  n=result["district_version"]))


@bp.post("/procedures/<procedure_id>/variants/<org_code>/rebase")
@login_required
def rebase(procedure_id: str, org_code: str):
    _require_editor()
    try:
        result = xw().write(variants.rebase_variant, procedure_id, org_code, username=g.user.username)
    except XiaoweiError as exc:
        if exc.status in (403, 404):
            raise
        return _page(procedure_id, org_code, status=exc.status if exc.status != 400 else 422, error=exc.message)
    done = (_("已更新到区级第%(n)s版,本镇的修改已重新合并,请核对后发布。", n=result["to_version"]) if result["merged"] else
            _("已以区级第%(n)s版为基础建立新草稿;下列本镇原有的修改无法自动合并,请对照重做后发布。", n=result["to_version"]))
    return _page(procedure_id, org_code, done=done, rebased=result)


__all__ = ["bp"]
