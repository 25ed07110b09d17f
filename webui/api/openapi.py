"""The OpenAPI 3 document of the ``/api/v1`` routes in :mod:`.routes` (served at /api/v1/openapi.json).
tests/test_web_api.py checks that it and the routes list the same paths and methods."""

from __future__ import annotations


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
        "/api/v1/cases": {"post": {
            "summary": "发起事项: start a case of a procedure at an organization, as the caller",
            "security": [{"session": [], "csrf": []}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["procedure_id", "org"], "properties": {
                    "procedure_id": {"type": "string", "example": "V-DEC-01"},
                    "org": {"type": "string", "description": "organization code", "example": "DONGAO"},
                    "data": {"type": "object", "description": "initial values (title, …)",
                             "additionalProperties": True}}}}}},
            "responses": {"201": {"description": "case_id and its ready steps"},
                          "400": _err("missing or wrong CSRF token"), "401": _err("not signed in"),
                          "403": _err("the caller may not start this procedure there"),
                          "404": _err("no such procedure or organization"), "422": _err("the data has errors")}},
            "get": {
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
        "/api/v1/cases/{case_id}/trail": {"get": {
            "summary": "The case's audit trail, self-contained: verify it offline with python -m engine.trailcheck FILE",
            "parameters": [_CASE_ID],
            "responses": {"200": {"description": "trail (JSON: format, case, events with their hashes)"},
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
