"""导入助手 (the import assistant's page): what stands between an imported draft and publishing, with a
role for each lane and a kind for each step to choose, and one button that saves what can be fixed
(:func:`engine.services.import_assistant.assist`)."""

from __future__ import annotations

from flask import Blueprint, abort, g, render_template, request

from engine.core import catalogue
from engine.core.errors import XiaoweiError
from engine.services import editing
from engine.services.import_assistant import KIND_ZH, assist

from webui.i18n import lang_part
from webui.security import login_required, xw

bp = Blueprint("import_assistant", __name__)


def _check_edit(procedure_id: str) -> None:
    if g.actor is None or not editing.is_editor(g.actor):
        abort(403)
    with xw().db.read() as s:
        exists, owner = editing.owner_of(s, procedure_id)
        if not exists:
            abort(404)
        if not editing.may_edit(s, g.actor, owner):
            abort(403)


@bp.route("/procedures/<procedure_id>/assist", methods=["GET", "POST"])
@login_required
def page(procedure_id: str):
    _check_edit(procedure_id)
    apply = request.method == "POST"
    roles = {k[5:]: v for k, v in request.form.items() if k.startswith("role:") and v} if apply else {}
    kinds = {k[5:]: v for k, v in request.form.items() if k.startswith("kind:") and v} if apply else {}
    revision = request.form.get("revision", type=int) if apply else None
    try:
        result = xw().write(assist, procedure_id, username=g.user.username, apply=apply, roles=roles, kinds=kinds,
                            expected_revision=revision)
    except XiaoweiError as exc:
        return render_template("procedures/assist.html", procedure_id=procedure_id, result=None,
                               error=lang_part(exc.message), roles={}, kinds=KIND_ZH), exc.status
    all_roles = {k: r.zh for k, r in catalogue.roles().items()}
    return render_template("procedures/assist.html", procedure_id=procedure_id, result=result, error=None,
                           roles=all_roles, kinds=KIND_ZH, applied=apply)


__all__ = ["bp"]
