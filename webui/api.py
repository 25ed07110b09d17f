"""A small JSON API over the same session cookie and permission checks as the pages.

POSTs need the session's CSRF token in the ``X-CSRF-Token`` header (``GET /api/v1/me`` gives it).
Errors are ``XiaoweiError.to_dict()`` with the error's HTTP status.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from engine import audit
from engine.errors import InvalidData

from . import objections as objection_views
from . import reads, uploads
from .cases import PROXY_KEYS, guard
from .security import csrf_token, login_required, xw
from .tasks import task_filters

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
    from .cases import parse_case_query

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
    info["objections"] = objection_views.for_api(case_id)
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


@bp.get("/openapi.json")
def openapi():
    return jsonify(OPENAPI)


def _err(desc: str) -> dict:
    return {"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


_CASE_ID = {"name": "case_id", "in": "path", "required": True, "schema": {"type": "integer"}}
OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "小微 Xiaowei API", "version": "1.0.0",
             "description": "Tasks and cases of village and community procedures (小微权力). Authenticate by "
                            "signing in at /login (session cookie); POSTs need the X-CSRF-Token header with "
                            "the token from GET /api/v1/me."},
    "servers": [{"url": "/"}],
    "components": {
        "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "xw_session"},
            "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
        },
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {
                "error": {"type": "string", "example": "invalid_data"},
                "message": {"type": "string"},
                "errors": {"type": "object", "additionalProperties": {"type": "string"},
                           "description": "field name → message (invalid_data)"}}},
            "Task": {"type": "object", "properties": {
                "case_id": {"type": "integer"}, "title": {"type": "string"}, "procedure_id": {"type": "string"},
                "procedure_name": {"type": "string"}, "step_id": {"type": "string"},
                "step_name": {"type": "string"}, "role": {"type": "string"}, "org": {"type": "string"},
                "org_name": {"type": "string"}, "ready_at": {"type": "string", "format": "date-time"},
                "due_at": {"type": "string", "format": "date-time", "nullable": True},
                "overdue": {"type": "boolean"}, "proxy": {"type": "boolean"}}},
            "FileRef": {"type": "object", "description": "a stored evidence file, named by the SHA-256 of its "
                                                         "content (JPEG, PNG, WebP, GIF, HEIC or PDF)",
                        "required": ["sha256"], "properties": {
                            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                            "name": {"type": "string", "description": "display name (cleaned)"},
                            "size": {"type": "integer"}, "type": {"type": "string", "example": "image/jpeg"}}},
            "Case": {"type": "object", "description": "status, current steps, timers, history and the steps "
                                                      "the caller may act on (actions)",
                     "properties": {"id": {"type": "integer"}, "title": {"type": "string"},
                                    "status": {"type": "string", "enum": ["running", "completed", "rejected",
                                                                          "terminated", "cancelled"]},
                                    "tracking_code": {"type": "string"},
                                    "current_steps": {"type": "array", "items": {"type": "object"}},
                                    "history": {"type": "array", "items": {"type": "object"}},
                                    "actions": {"type": "array", "items": {"type": "object"}}}},
        },
    },
    "security": [{"session": []}],
    "paths": {
        "/api/v1/me": {"get": {"summary": "The signed-in user and the CSRF token for POSTs",
                               "responses": {"200": {"description": "user"}, "401": _err("not signed in")}}},
        "/api/v1/tasks": {"get": {
            "summary": "我的待办: ready steps the caller can act on",
            "parameters": [{"name": "procedure", "in": "query", "schema": {"type": "string"}},
                           {"name": "org", "in": "query", "schema": {"type": "string"}},
                           {"name": "overdue", "in": "query", "schema": {"type": "string", "enum": ["1"]}}],
            "responses": {"200": {"description": "tasks", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"count": {"type": "integer"}, "tasks": {
                    "type": "array", "items": {"$ref": "#/components/schemas/Task"}}}}}}},
                "401": _err("not signed in")}}},
        "/api/v1/cases": {"get": {
            "summary": "事项查询: the caller's cases, or every visible case with scope=all (supervisors)",
            "parameters": [{"name": k, "in": "query", "schema": {"type": "string"}, "description": d} for k, d in (
                ("scope", "all = every case in the caller's organizations (supervisors and township staff)"),
                ("org", "organization code"), ("procedure", "procedure id"), ("category", "category code"),
                ("status", "running | completed | rejected | terminated | cancelled"),
                ("from", "started on or after this China date, YYYY-MM-DD"),
                ("to", "started on or before this China date, YYYY-MM-DD"),
                ("overdue", "1 = only cases with an overdue step"), ("amount_min", "yuan"), ("amount_max", "yuan"),
                ("person", "a username or name who acted, or a name in a person field"),
                ("q", "title or tracking code"), ("page", "page number from 1 (50 per page)"))],
            "responses": {"200": {"description": "total, page, per_page and cases"},
                          "401": _err("not signed in"), "422": _err("a filter has errors")}}},
        "/api/v1/cases/{case_id}": {"get": {
            "summary": "A case the caller may see", "parameters": [_CASE_ID],
            "responses": {"200": {"description": "case", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Case"}}}},
                "401": _err("not signed in"), "403": _err("outside the caller's organizations (recorded)"),
                "404": _err("no such case")}}},
        "/api/v1/cases/{case_id}/steps/{step_id}": {"post": {
            "summary": "Complete a ready step", "security": [{"session": [], "csrf": []}],
            "parameters": [_CASE_ID, {"name": "step_id", "in": "path", "required": True,
                                      "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": {
                    "type": "object", "description": "form data: field name → value; optional on_behalf_of and "
                                                     "proxy_reason for 代办; optional attachments: files stored "
                                                     "before with POST /api/v1/files (recorded in the step's "
                                                     "audit event)",
                    "properties": {"attachments": {"type": "array", "maxItems": 10, "items": {
                        "$ref": "#/components/schemas/FileRef"}}},
                    "additionalProperties": True}},
                "multipart/form-data": {"schema": {
                    "type": "object", "description": "form fields as text parts; evidence files as file parts "
                                                     "(at most 10 per step, each at most XIAOWEI_MAX_UPLOAD_MB, "
                                                     "default 10 MB; the extension must match the content); "
                                                     "attachment = sha256 of a file stored before",
                    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                                   "attachment": {"type": "array", "items": {"type": "string"}}},
                    "additionalProperties": {"type": "string"}}}}},
            "responses": {"200": {"description": "the case status and its ready steps (and the attachments "
                                                 "recorded)"},
                          "400": _err("missing or wrong CSRF token"), "401": _err("not signed in"),
                          "403": _err("the caller may not do this step (recorded)"), "404": _err("no such case or step"),
                          "409": _err("the step is not ready or was already done"),
                          "422": _err("the form data has errors")}}},
        "/api/v1/files": {"post": {
            "summary": "Upload evidence files (photos, scans, PDF) to attach to a step later",
            "security": [{"session": [], "csrf": []}],
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "properties": {"files": {"type": "array", "maxItems": 10, "items": {
                    "type": "string", "format": "binary"}}}}}}},
            "responses": {"201": {"description": "the stored files", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"files": {"type": "array", "items": {
                    "$ref": "#/components/schemas/FileRef"}}}}}}},
                "400": _err("missing or wrong CSRF token"), "401": _err("not signed in"),
                "413": _err("the request is larger than 20 MB"),
                "422": _err("empty, oversized, unknown or disguised file (the extension does not match the "
                            "content), or more than 10 files")}}},
        "/api/v1/warnings": {"get": {
            "summary": "预警: warnings in the caller's scope (supervisors and township staff), newest first; the same "
                       "data as `xiaowei warnings list --json`",
            "parameters": [{"name": k, "in": "query", "schema": {"type": "string"}, "description": d} for k, d in (
                ("severity", "red | yellow | blue"), ("status", "raised | acknowledged | resolved | dismissed | open"),
                ("rule", "rule id, e.g. WR-01"), ("org", "organization code"), ("page", "page number from 1 (50 per page)"))],
            "responses": {"200": {"description": "total, limit, offset and warnings"},
                          "401": _err("not signed in"), "403": _err("not a supervisor")}}},
        "/api/v1/warnings/{warning_id}": {"get": {
            "summary": "A warning: facts, who it involves, handling history",
            "parameters": [{"name": "warning_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "responses": {"200": {"description": "warning"}, "401": _err("not signed in"),
                          "403": _err("not a supervisor"), "404": _err("no such warning in the caller's scope")}}},
        "/api/v1/openapi.json": {"get": {"summary": "This description", "security": [],
                                         "responses": {"200": {"description": "OpenAPI 3 document"}}}},
    },
}
