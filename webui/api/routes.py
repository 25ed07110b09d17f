"""Every ``/api/v1`` route: a small JSON API over the same session cookie and permission checks as the
pages. Its OpenAPI document is beside it (:mod:`.openapi`); a test checks the two list the same paths.

POSTs need the session's CSRF token in the ``X-CSRF-Token`` header (``GET /api/v1/me`` gives it).
Errors are ``XiaoweiError.to_dict()`` with the error's HTTP status.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from engine.core import audit
from engine.core.errors import InvalidData

from engine.services import objection_reads, reads
from webui.views import uploads
from webui.views.cases import PROXY_KEYS, guard
from webui.security import csrf_token, login_required, xw
from webui.views import warnings as warning_views
from webui.views.tasks import task_filters

from .openapi import OPENAPI

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.get("/me")
@login_required
def me():
    return jsonify(username=g.user.username, display_name=g.user.display_name,
                   roles=sorted({role for role, _ in g.actor.assignments}), csrf_token=csrf_token())


@bp.get("/tasks")
@login_required
def tasks():
    f = task_filters()
    with xw().db.read() as s:
        rows = reads.my_tasks(s, g.actor, procedure=f["procedure"], org_code=f["org"], overdue=f["overdue"])
    return jsonify(count=len(rows), tasks=[r.to_dict() for r in rows])


@bp.get("/cases")
@login_required
def cases():
    """The case search of the pages: the caller's cases, or (supervisors, ``scope=all``) every visible case."""
    from webui.views.cases import parse_case_query

    search = reads.is_supervisor(g.actor) and request.args.get("scope") == "all"
    q, _, errors = parse_case_query(request.args, search=search)
    if errors:
        raise InvalidData("查询条件有误 / the filters have errors", errors)
    with xw().db.read() as s:
        rows, total = reads.search_cases(s, g.actor, q)
    for r in rows:
        r["created_at"], r["updated_at"] = audit.iso(r["created_at"]), audit.iso(r["updated_at"])
    return jsonify(total=total, page=q.page, per_page=q.per_page, cases=rows)


@bp.get("/cases/<int:case_id>")
@login_required
def case(case_id: int):
    row = guard(case_id, "view")
    info = xw().show_case(case_id)
    with xw().db.read() as s:
        d = reads.definition(s, row.procedure_version_id)
        actions = []
        for item in info["current_steps"]:
            step = d.steps.get(item["step_id"])
            how = reads.can_act(s, g.actor, row.org_id, step, item["role"]) if info["status"] == "running" else None
            if how and step is not None:
                actions.append({"step_id": step.id, "name": step.name, "as": how, "due_at": item["due_at"],
                                "overdue": item["overdue"], "proxy": step.proxy,
                                "fields": [f.to_dict() for f in step.fields]})
    info["actions"] = actions
    info["objections"] = xw().read(objection_reads.for_api, g.actor, case_id)
    return jsonify(info)


@bp.post("/cases/<int:case_id>/steps/<step_id>")
@login_required
def complete(case_id: int, step_id: str):
    row = guard(case_id, "complete")
    if request.mimetype == "multipart/form-data":
        # Form values as fields, evidence as file parts (any name), earlier uploads as ``attachment`` = sha256.
        data = {k: v.strip() for k, v in request.form.items()
                if k not in ("attachment", "csrf_token") and not k.startswith("attachment_name.") and v.strip()}
        refs: list = uploads.form_refs()
    else:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise InvalidData("请求体须为 JSON 对象 / the body must be a JSON object", {})
        data = dict(body)
        refs = data.pop("attachments", None) or []
        if not isinstance(refs, list):
            raise InvalidData("attachments 须为列表 / attachments must be a list of file references",
                              {"attachments": "list"})
    proxy = {k: data.pop(k, None) for k in PROXY_KEYS}
    for k, v in proxy.items():
        if v is not None and not isinstance(v, str):
            raise InvalidData(f"{k} 须为文字 / {k} must be text", {k: "text"})
    with xw().db.read() as s:
        step = reads.definition(s, row.procedure_version_id).steps.get(step_id)
        may_act = step is not None and row.status == "running" and \
            reads.can_act(s, g.actor, row.org_id, step, step.role or "")
    # Files are stored only for someone who may do the step; anyone else is refused (and recorded) below.
    files = uploads.gather(g.user.username, refs) if may_act else []
    result = xw().complete(case_id, step_id, g.user.username, data,
                           on_behalf_of=proxy["on_behalf_of"], proxy_reason=proxy["proxy_reason"],
                           attachments=files or None)
    if files:
        result["attachments"] = files
    return jsonify(result)


@bp.post("/files")
@login_required
def files():
    """Store evidence files (multipart, one or more parts); their references, for a later step."""
    if not request.files:
        raise InvalidData("请选择要上传的文件(multipart/form-data) / send the files as multipart/form-data",
                          {uploads.FIELD: "没有文件"})
    stored = uploads.store_received(g.user.username)
    if not stored:
        raise InvalidData("请选择要上传的文件 / no file was sent", {uploads.FIELD: "没有文件"})
    return jsonify(files=stored), 201


@bp.post("/cases")
@login_required
def start():
    """Start a case of a procedure at an organization, as the caller (the same checks as 发起事项)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidData("请求体须为 JSON 对象 / the body must be a JSON object", {})
    procedure_id, org_code, data = body.get("procedure_id"), body.get("org"), body.get("data") or {}
    problems = {k: "text" for k, v in (("procedure_id", procedure_id), ("org", org_code)) if not isinstance(v, str) or not v}
    if not isinstance(data, dict):
        problems["data"] = "object"
    if problems:
        raise InvalidData("须给出 procedure_id、org(文字)和 data(JSON 对象)/ procedure_id and org (text) and data "
                          "(an object) are required", problems)
    case_id = xw().start_case(procedure_id, org_code, g.user.username, data)
    return jsonify(case_id=case_id, tasks=xw().tasks(case_id, fire=False)), 201


@bp.get("/cases/<int:case_id>/trail")
@login_required
def trail(case_id: int):
    """The case's self-contained audit trail (the JSON that ``python -m engine.trailcheck`` verifies offline)."""
    guard(case_id, "export_trail")
    return Response(xw().export_trail(case_id), mimetype="application/json",
                    headers={"Content-Disposition": f"attachment; filename=trail-{case_id}.json"})


@bp.get("/warnings")
@login_required
def warnings_list():
    """预警 in the caller's scope (the page's filters); the same data as ``xiaowei warnings list --json``."""
    warning_views.require_reader()
    data, _ = warning_views.warning_list(request.args)
    return jsonify(data)


@bp.get("/warnings/<int:warning_id>")
@login_required
def warning(warning_id: int):
    warning_views.require_reader()
    return jsonify(xw().show_warning(warning_id, g.user.username))


@bp.get("/openapi.json")
def openapi():
    return jsonify(OPENAPI)
