"""A small JSON API over the same session cookie and permission checks as the pages.

POSTs need the session's CSRF token in the ``X-CSRF-Token`` header (``GET /api/v1/me`` gives it).
Errors are ``XiaoweiError.to_dict()`` with the error's HTTP status.
"""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from engine.errors import InvalidData

from . import reads
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
    return jsonify(info)


@bp.post("/cases/<int:case_id>/steps/<step_id>")
@login_required
def complete(case_id: int, step_id: str):
    guard(case_id, "complete")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidData("请求体须为 JSON 对象 / the body must be a JSON object", {})
    data = dict(body)
    proxy = {k: data.pop(k, None) for k in PROXY_KEYS}
    for k, v in proxy.items():
        if v is not None and not isinstance(v, str):
            raise InvalidData(f"{k} 须为文字 / {k} must be text", {k: "text"})
    result = xw().complete(case_id, step_id, g.user.username, data,
                           on_behalf_of=proxy["on_behalf_of"], proxy_reason=proxy["proxy_reason"])
    return jsonify(result)


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
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "description": "form data: field name → value; optional on_behalf_of and "
                                                 "proxy_reason for 代办",
                "additionalProperties": True}}}},
            "responses": {"200": {"description": "the case status and its ready steps"},
                          "400": _err("missing or wrong CSRF token"), "401": _err("not signed in"),
                          "403": _err("the caller may not do this step (recorded)"), "404": _err("no such case or step"),
                          "409": _err("the step is not ready or was already done"),
                          "422": _err("the form data has errors")}}},
        "/api/v1/openapi.json": {"get": {"summary": "This description", "security": [],
                                         "responses": {"200": {"description": "OpenAPI 3 document"}}}},
    },
}
