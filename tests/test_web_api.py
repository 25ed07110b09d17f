"""The JSON API: same session and permission checks as the pages, errors as JSON."""

from __future__ import annotations


from web_helpers import COLLECT, login



def api_client(app, username):
    client = login(app, username)
    me = client.get("/api/v1/me")
    assert me.status_code == 200 and me.json["username"] == username
    client.csrf = me.json["csrf_token"]
    return client


def test_api_needs_a_session(app, case_id):
    client = app.test_client()
    for url in ("/api/v1/tasks", f"/api/v1/cases/{case_id}", "/api/v1/me"):
        response = client.get(url)
        assert response.status_code == 401 and response.json == {"error": "unauthorized"}


def test_api_tasks_and_case(app, people, case_id):
    client = api_client(app, people["party_branch"])
    tasks = client.get("/api/v1/tasks").json
    assert tasks["count"] == 1
    assert tasks["tasks"][0]["case_id"] == case_id and tasks["tasks"][0]["step_id"] == "collect"
    assert api_client(app, people["joint_meeting"]).get("/api/v1/tasks").json["count"] == 0
    case = client.get(f"/api/v1/cases/{case_id}").json
    assert case["status"] == "running" and case["actions"][0]["step_id"] == "collect"
    assert {f["name"] for f in case["actions"][0]["fields"]} >= set(COLLECT)


def test_api_complete_with_permission_checks(app, xw, people, case_id):
    url = f"/api/v1/cases/{case_id}/steps/collect"
    client = api_client(app, people["party_branch"])
    no_token = client.post(url, json=COLLECT)
    assert no_token.status_code == 400 and no_token.json["error"] == "csrf"
    # The form field is not accepted in place of the header on the API.
    assert client.post(url, json=COLLECT, query_string={"csrf_token": client.csrf}).status_code == 400
    headers = {"X-CSRF-Token": client.csrf}
    invalid = client.post(url, json={**COLLECT, "amount": "很多"}, headers=headers)
    assert invalid.status_code == 422 and invalid.json["error"] == "invalid_data"
    assert "amount" in invalid.json["errors"]
    assert client.post(url, data="not json", headers=headers).status_code == 422
    outsider = api_client(app, people["nanxi_all"])
    denied = outsider.post(url, json=COLLECT, headers={"X-CSRF-Token": outsider.csrf})
    assert denied.status_code == 403 and denied.json["error"] == "forbidden"
    assert outsider.get(f"/api/v1/cases/{case_id}").status_code == 403
    wrong_role = api_client(app, people["joint_meeting"])
    refused = wrong_role.post(url, json=COLLECT, headers={"X-CSRF-Token": wrong_role.csrf})
    assert refused.status_code == 403 and "无权办理" in refused.json["message"]
    assert [t["step_id"] for t in xw.tasks(case_id)] == ["collect"]
    done = client.post(url, json=COLLECT, headers=headers)
    assert done.status_code == 200 and done.json["status"] == "running"
    assert [t["step_id"] for t in done.json["tasks"]] == ["propose"]
    again = client.post(url, json=COLLECT, headers=headers)
    assert again.status_code == 409 and again.json["error"] == "conflict"
    assert client.get("/api/v1/cases/99999").status_code == 404
    assert client.get("/api/v1/cases/99999").json["error"] == "not_found"
    actors = [(e["actor"], e["data"]["action"]) for e in xw.show_case(case_id)["history"]
              if e["type"] == "access_denied"]
    assert (people["nanxi_all"], "complete") in actors and (people["joint_meeting"], "complete") in actors


def test_openapi_document_matches_the_routes(app):
    """Every /api/v1 route is in the document with its methods, and the document lists no other."""
    import re

    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json
    assert doc["openapi"].startswith("3.")
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            routes |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert len(routes) >= 11
    assert documented == routes, (sorted(routes - documented), sorted(documented - routes))
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and op["responses"], (path, method)
            if op.get("security") != []:
                assert "401" in op["responses"], (path, method)
            if method == "post":
                assert {"csrf": []} in [{k: v} for s in op["security"] for k, v in s.items()], (path, method)
                assert "400" in op["responses"], (path, method)
    post = doc["paths"]["/api/v1/cases/{case_id}/steps/{step_id}"]["post"]
    assert {"400", "403", "404", "409", "422"} <= set(post["responses"])


def test_api_start_a_case_and_download_its_trail(app, people):
    from engine.trailcheck import verify_trail

    client = api_client(app, people["party_branch"])
    body = {"procedure_id": "V-DEC-01", "org": "DONGAO", "data": {"title": "API 发起的事项"}}
    assert client.post("/api/v1/cases", json=body).status_code == 400  # no CSRF token
    started = client.post("/api/v1/cases", json=body, headers={"X-CSRF-Token": client.csrf})
    assert started.status_code == 201, started.json
    case_id = started.json["case_id"]
    assert [t["step_id"] for t in started.json["tasks"]] == ["collect"]
    bad = client.post("/api/v1/cases", json={"org": "DONGAO"}, headers={"X-CSRF-Token": client.csrf})
    assert bad.status_code == 422 and set(bad.json["errors"]) == {"procedure_id"}
    elsewhere = client.post("/api/v1/cases", json={**body, "org": "NANXI"}, headers={"X-CSRF-Token": client.csrf})
    assert elsewhere.status_code in (403, 404) and elsewhere.json["error"] in ("forbidden", "not_found")
    trail = client.get(f"/api/v1/cases/{case_id}/trail")
    assert trail.status_code == 200 and trail.mimetype == "application/json"
    assert verify_trail(trail.text) == []
    assert trail.json["events"][0]["type"] == "case_started"
    tampered = trail.text.replace("API 发起的事项", "别的事项")
    assert tampered != trail.text and verify_trail(tampered)
    outsider = api_client(app, people["nanxi_all"])
    assert outsider.get(f"/api/v1/cases/{case_id}/trail").status_code == 403
