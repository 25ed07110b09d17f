"""The permission matrix: every route of the web app and the JSON API × every kind of user × own or
other organization, through Flask's test client on the real test database.

Each cell is its own test id (``route|user|org``). A route the matrix does not classify fails
``test_matrix_classifies_every_route``, so a new page must be added here with its expected access.
POSTs carry the session's valid CSRF token: these tests check authorization, not CSRF.
"""

from __future__ import annotations

import pytest

from web_helpers import COLLECT, PASSWORD, login, make_app, token_of

# --- who ---------------------------------------------------------------------------------------------
# kind → key into the ``people`` fixture (None: not signed in).
USERS = {
    "anonymous": None,
    "dongao_role_holder": "party_branch",        # party_branch@DONGAO: the role of V-DEC-01's first step
    "dongao_without_role": "joint_meeting",      # joint_meeting@DONGAO
    "nanxi_cadre": "nanxi_all",                  # every village role @NANXI (other village, same township)
    "supervisor": "supervision_committee",       # supervision_committee@DONGAO
    "township_staff": "township_staff",          # township_staff@SFZ
    "district_admin": "district_admin",          # district_admin@SFQ
}
# The villages each kind may see, and where it holds party_branch (may do V-DEC-01's first step / start it).
SEES = {"anonymous": set(), "dongao_role_holder": {"DONGAO"}, "dongao_without_role": {"DONGAO"},
        "nanxi_cadre": {"NANXI"}, "supervisor": {"DONGAO"}, "township_staff": {"DONGAO", "NANXI"},
        "district_admin": {"DONGAO", "NANXI"}}
STEP_ROLE = {"dongao_role_holder": {"DONGAO"}, "nanxi_cadre": {"NANXI"}}
# Township and district administrators may start any procedure in their villages (not do its steps).
MAY_START = {**STEP_ROLE, "township_staff": {"DONGAO", "NANXI"}, "district_admin": {"DONGAO", "NANXI"}}

ORGS = {"dongao": "DONGAO", "nanxi": "NANXI"}

# --- what --------------------------------------------------------------------------------------------
# (method, rule) → kind of route. Kinds ending in ``@org`` are tested against both organizations.
ROUTES = {
    ("GET", "/"): "home",
    ("GET", "/password"): "page",
    ("POST", "/password"): "password_post",
    ("GET", "/tasks"): "page",
    ("GET", "/cases"): "page",
    ("GET", "/start"): "start_get@org",
    ("GET", "/overview"): "overview",
    ("POST", "/start"): "start_post@org",
    ("GET", "/cases/<int:case_id>"): "case_view@org",
    ("GET", "/cases/<int:case_id>/trail"): "case_view@org",
    ("GET", "/cases/<int:case_id>/trail.json"): "case_view@org",
    ("POST", "/cases/<int:case_id>/steps/<step_id>"): "case_complete@org",
    ("GET", "/api/v1/me"): "api",
    ("GET", "/api/v1/tasks"): "api",
    ("GET", "/api/v1/cases/<int:case_id>"): "api_case_view@org",
    ("POST", "/api/v1/cases/<int:case_id>/steps/<step_id>"): "api_case_complete@org",
    ("GET", "/api/v1/openapi.json"): "public",
}
UNCLASSIFIED_OK = {"/static/<path:filename>", "/healthz", "/login", "/logout"}
# The action recorded in the case's trail when a case route is refused.
DENIED_ACTION = {
    "/cases/<int:case_id>": "view",
    "/cases/<int:case_id>/trail": "view_trail",
    "/cases/<int:case_id>/trail.json": "export_trail",
    "/cases/<int:case_id>/steps/<step_id>": "complete",
    "/api/v1/cases/<int:case_id>": "view",
    "/api/v1/cases/<int:case_id>/steps/<step_id>": "complete",
}


def _cells():
    for (method, rule), kind in ROUTES.items():
        orgs = list(ORGS) if kind.endswith("@org") else ["-"]
        for user in USERS:
            for org in orgs:
                yield pytest.param(method, rule, user, org, id=f"{method} {rule}|{user}|{org}")


def _rules(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule in UNCLASSIFIED_OK:
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            found.add((method, rule.rule))
    return found


def test_matrix_classifies_every_route(xw):
    found = _rules(make_app(xw))
    assert found - set(ROUTES) == set(), "routes the permission matrix does not classify (add them to ROUTES)"
    assert set(ROUTES) - found == set(), "the matrix lists routes the app no longer has"


# --- the cells ---------------------------------------------------------------------------------------

def _client(app, people, user: str):
    key = USERS[user]
    if key is None:
        client = app.test_client()
        client.csrf = token_of(client.get("/login").text)  # an anonymous session's valid token
        return client
    return _signed_in(app, people[key])


def _signed_in(app, username: str):
    client = login(app, username)
    me = client.get("/api/v1/me")  # the API takes the same token, in a header
    assert me.status_code == 200 and me.json["csrf_token"] == client.csrf
    return client


def _denials(xw, case: int) -> list[tuple[str, str]]:
    return [(e["actor"], e["data"].get("action")) for e in xw.show_case(case)["history"]
            if e["type"] == "access_denied"]


def _expect(kind: str, user: str, org_code: str | None) -> int:
    """The expected status of a signed-in user's request (anonymous users are handled apart)."""
    base = kind.removesuffix("@org")
    sees = org_code in SEES[user]
    if base in ("page", "api", "public"):
        return 200
    if base == "home":
        return 302
    if base == "overview":  # 镇街总览: township and district staff only
        return 200 if user in ("township_staff", "district_admin") else 403
    if base == "password_post":
        return 422  # reaches the view: the form's confirmation does not match
    if base == "start_get":
        return 200 if sees else 403
    if base == "start_post":
        if not sees:
            return 403
        return 302 if org_code in MAY_START.get(user, set()) else 422
    if base in ("case_view", "api_case_view"):
        return 200 if sees else 403
    if base == "case_complete":
        return 302 if org_code in STEP_ROLE.get(user, set()) else 403
    if base == "api_case_complete":
        return 200 if org_code in STEP_ROLE.get(user, set()) else 403
    raise AssertionError(f"unknown route kind {kind}")


@pytest.mark.parametrize("method,rule,user,org", list(_cells()))
def test_permission_matrix(app, xw, people, case_id, method, rule, user, org):
    org_code = ORGS.get(org)
    kind = ROUTES[(method, rule)]
    case = None
    if "<int:case_id>" in rule:
        case = case_id if org_code == "DONGAO" else xw.start_case("V-DEC-01", "NANXI", people["nanxi_all"])
    url = rule.replace("<int:case_id>", str(case)).replace("<step_id>", "collect")
    client = _client(app, people, user)
    api = rule.startswith("/api/")

    if method == "GET":
        if kind.startswith("start_get"):
            url += f"?org={org_code}"
        response = client.get(url)
    elif api:
        response = client.post(url, json=COLLECT, headers={"X-CSRF-Token": client.csrf})
    elif rule == "/password":
        response = client.post(url, data={"current": PASSWORD, "new": "new-password-1",
                                          "confirm": "new-password-2", "csrf_token": client.csrf})
    elif rule == "/start":
        response = client.post(url, data={"org": org_code, "procedure": "V-DEC-01", "title": "矩阵测试事项",
                                          "csrf_token": client.csrf})
    else:
        response = client.post(url, data={**COLLECT, "csrf_token": client.csrf})
    assert response.status_code != 400, "the CSRF token was refused: the test must check authorization"

    username = people[USERS[user]] if USERS[user] else None
    if username is None:
        if kind == "public":
            assert response.status_code == 200
        elif kind == "home":
            assert response.status_code == 302 and response.location == "/tasks"
        elif api:
            assert response.status_code == 401 and response.json == {"error": "unauthorized"}
        else:
            assert response.status_code == 302 and response.location.startswith("/login"), response.status_code
        if case is not None:
            assert _denials(xw, case) == []
            assert [t["step_id"] for t in xw.tasks(case)] == ["collect"]
        return

    expected = _expect(kind, user, org_code)
    assert response.status_code == expected, response.get_data(as_text=True)[:500]
    if kind == "home":
        assert response.location == "/tasks"
    if kind.startswith("start_post") and expected == 302:
        started = int(response.location.rsplit("/", 1)[1])
        assert xw.show_case(started)["status"] == "running"
    if expected == 403 and not api:
        assert "无权访问" in response.text
    if expected == 403 and api:
        assert response.json["error"] == "forbidden"
    if case is None:
        return
    steps = [t["step_id"] for t in xw.tasks(case)]
    if expected == 403:
        # Every refusal on a case is recorded in that case's trail, for supervisors.
        assert _denials(xw, case) == [(username, DENIED_ACTION[rule])]
        assert steps == ["collect"]
        assert all(r.ok for r in xw.verify(case))
    else:
        assert _denials(xw, case) == []
        assert steps == (["propose"] if method == "POST" else ["collect"])


# --- 代办: a proxy step may be done by a proxy role (or the step's own role) ----------------------------

APPLY = {"applicant_name": "王大伯", "id_number": "11010519491231002X", "phone": "13800138000",
         "household_size": "2", "household_income": "800", "hardship_reason": "年老多病",
         "kin_of_cadre": "false", "authorization_signed": "true"}
PROXY_USERS = {"committee": 200, "grid_worker": 200, "handler": 200, "party_branch": 403, "joint_meeting": 403,
               "supervision_committee": 403, "nanxi_all": 403, "township_staff": 403, "district_admin": 403}


@pytest.mark.parametrize("key,expected", list(PROXY_USERS.items()), ids=list(PROXY_USERS))
def test_proxy_step_needs_a_proxy_role_of_the_village(app, xw, people, key, expected):
    case = xw.start_case("B-SVC-01", "DONGAO", people["committee"])
    assert xw.tasks(case)[0]["step_id"] == "apply"
    client = _signed_in(app, people[key])
    response = client.post(f"/api/v1/cases/{case}/steps/apply", headers={"X-CSRF-Token": client.csrf},
                           json={**APPLY, "on_behalf_of": "王大伯", "proxy_reason": "年老行动不便"})
    assert response.status_code == expected, response.get_data(as_text=True)[:500]
    if expected == 200:
        done = [e for e in xw.show_case(case)["history"] if e["type"] == "step_completed"]
        assert done[-1]["actor"] == people[key] and done[-1]["data"]["on_behalf_of"]["name"] == "王大伯"
        assert _denials(xw, case) == []
    else:
        assert _denials(xw, case) == [(people[key], "complete")]
        assert [t["step_id"] for t in xw.tasks(case)] == ["apply"]
