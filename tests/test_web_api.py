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


def test_openapi_document_lists_the_paths(app):
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json
    assert doc["openapi"].startswith("3.")
    assert {"/api/v1/tasks", "/api/v1/cases/{case_id}", "/api/v1/cases/{case_id}/steps/{step_id}",
            "/api/v1/me", "/api/v1/openapi.json"} <= set(doc["paths"])
    post = doc["paths"]["/api/v1/cases/{case_id}/steps/{step_id}"]["post"]
    assert {"400", "403", "404", "409", "422"} <= set(post["responses"])
