"""The permission matrix: every route of the web app and the JSON API × every kind of user × own or
other organization, through Flask's test client on the real test database.

Each cell is its own test id (``route|user|org``). A route the matrix does not classify fails
``test_matrix_classifies_every_route``, so a new page must be added here with its expected access.
POSTs carry the session's valid CSRF token: these tests check authorization, not CSRF.
"""

from __future__ import annotations

import pytest

from engine.services import variants
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
# 预警 readers (nanxi_all holds supervision_committee at 南溪村); supervisors among them handle.
WARNING_READERS = {"supervisor", "nanxi_cadre", "township_staff", "district_admin"}

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
    ("GET", "/cases/<int:case_id>/trail/print"): "case_view@org",
    ("GET", "/cases/<int:case_id>/trail.pdf"): "case_view@org",
    ("GET", "/admin"): "admin_home",
    ("GET", "/admin/users"): "admin",
    ("GET", "/admin/users/new"): "admin",
    ("POST", "/admin/users/new"): "admin_post",
    ("GET", "/admin/users/<username>"): "admin_user",
    ("POST", "/admin/users/<username>/roles"): "admin_user_post",
    ("POST", "/admin/users/<username>/roles/revoke"): "admin_user_post",
    ("POST", "/admin/users/<username>/password"): "admin_user_post",
    ("POST", "/admin/users/<username>/active"): "admin_user_post",
    ("POST", "/admin/users/<username>/sessions/end"): "admin_user_action",  # sign out everywhere: no form
    ("POST", "/logout/everywhere"): "signout",
    ("POST", "/cases/<int:case_id>/retry"): "case_retry@org",  # no open incident: 409 told on the case page
    ("GET", "/public/checkpoint.json"): "public",
    ("GET", "/admin/params"): "admin",
    ("POST", "/admin/params"): "admin_post",
    ("GET", "/admin/audit"): "admin",
    ("POST", "/cases/<int:case_id>/steps/<step_id>"): "case_complete@org",
    ("GET", "/cases/<int:case_id>/files/<sha256>"): "case_file@org",
    ("POST", "/api/v1/files"): "api_upload",
    ("GET", "/api/v1/me"): "api",
    ("GET", "/api/v1/tasks"): "api",
    ("GET", "/api/v1/cases"): "api",
    ("GET", "/api/v1/cases/<int:case_id>"): "api_case_view@org",
    ("GET", "/api/v1/cases/<int:case_id>/trail"): "api_case_view@org",
    ("POST", "/api/v1/cases"): "api_start",
    ("POST", "/api/v1/cases/<int:case_id>/steps/<step_id>"): "api_case_complete@org",
    ("GET", "/api/v1/openapi.json"): "public",
    ("GET", "/warnings"): "warnings",
    ("GET", "/warnings/<int:warning_id>"): "warnings@org",
    ("POST", "/warnings/<int:warning_id>/handle"): "warnings_handle@org",
    ("GET", "/api/v1/warnings"): "api_warnings",
    ("GET", "/api/v1/warnings/<int:warning_id>"): "api_warnings@org",
    # The public side (no login): pages for anyone; its forms answer everyone alike (the report here
    # 422: no text; an objection 409: the test case has nothing on notice).
    ("GET", "/public/"): "public",
    ("GET", "/public/<org_code>"): "public",
    ("GET", "/public/<org_code>/money"): "public",
    ("GET", "/public/<org_code>/subsidies"): "public",
    ("GET", "/public/<org_code>/procedures/<procedure_id>"): "public",
    ("GET", "/public/<org_code>/procedures/<procedure_id>/chart.svg"): "public",
    ("GET", "/public/<org_code>/report"): "public",
    ("POST", "/public/<org_code>/report"): "public_post",
    ("GET", "/public/track"): "public_track",
    ("GET", "/public/case/<code>"): "public",
    ("GET", "/public/case/<code>/data.json"): "public",
    ("GET", "/public/case/<code>/receipt"): "public",
    ("GET", "/public/case/<code>/chart.svg"): "public",
    ("GET", "/public/case/<code>/objection"): "public",
    ("POST", "/public/case/<code>/objection"): "public_closed",
    # An objector's tracking page and receipt, by the receipt code (here one no objection has: 404).
    ("GET", "/public/objection/<receipt>"): "public_missing",
    ("GET", "/public/objection/<receipt>/receipt"): "public_missing",
    ("GET", "/lang/<code>"): "public_redirect",  # sets the language cookie and goes back
    # 流程管理: township and district staff see the library; only district staff edit it (V-DEC-01).
    ("GET", "/procedures"): "editor_page",
    ("GET", "/procedures/<procedure_id>"): "editor_page",
    ("POST", "/procedures/<procedure_id>/draft"): "library_edit",
    ("POST", "/procedures/<procedure_id>/publish"): "library_publish",
    ("POST", "/procedures/<procedure_id>/migrate"): "library_edit",
    ("POST", "/procedures/import"): "editor_import",
    # 任务单 and 流程图编辑器: any editor starts a new procedure; the library's are edited by district staff.
    ("GET", "/procedures/new"): "editor_page",
    ("POST", "/procedures/new"): "editor_form",
    ("GET", "/procedures/<procedure_id>/table"): "library_edit",
    ("POST", "/procedures/<procedure_id>/table"): "library_form",
    ("GET", "/procedures/<procedure_id>/modeler"): "library_edit",
    ("GET", "/procedures/<procedure_id>/modeler/data.json"): "library_edit",
    ("POST", "/procedures/<procedure_id>/modeler/save"): "library_form",
    ("POST", "/procedures/<procedure_id>/modeler/check"): "library_form",
    # 镇(街道)变体 (issue #15): 示范镇's staff and district staff; village cadres never. The GET cells' database
    # holds 示范镇's variant of V-DEC-01; the POST cells' has none (publish and rebase: 404 for editors).
    ("GET", "/procedures/<procedure_id>/variants/<org_code>"): "variant_page",
    ("POST", "/procedures/<procedure_id>/variants/<org_code>"): "variant_open",
    ("POST", "/procedures/<procedure_id>/variants/<org_code>/publish"): "variant_missing",
    ("POST", "/procedures/<procedure_id>/variants/<org_code>/rebase"): "variant_missing",
    ("POST", "/procedures/<procedure_id>/variants/<org_code>/withdraw"): "variant_missing",
    # 导入 (#15): choosing another pool of an imported file; the 导入助手 of a draft (V-DEC-01 has none: 404)
    ("POST", "/procedures/import/choose"): "editor_import",
    ("GET", "/procedures/<procedure_id>/assist"): "library_publish",
    ("POST", "/procedures/<procedure_id>/assist"): "library_publish",
    # 监督分析 (charts, CSV, heat map): township and district staff, supervisors, a village's committee.
    ("GET", "/dashboard"): "dashboard",
    ("GET", "/dashboard/<chart>.csv"): "dashboard",
    ("GET", "/dashboard/<chart>.xlsx"): "dashboard",
    # Excel and CSV of the case search (every signed-in user, their own cases) and of the warnings inbox
    ("GET", "/cases/export.<fmt>"): "page",
    ("GET", "/warnings/export.<fmt>"): "warnings",
    ("GET", "/dashboard/heat/<procedure_id>"): "dashboard",
    # 廉情档案: supervisors only, of the cadre's village or above (the cadre: 东岙村's party_branch).
    ("GET", "/cadres"): "cadres",
    ("GET", "/cadres/<username>"): "cadre_file",
    ("POST", "/cadres/<username>/notes"): "cadre_note",
}
UNCLASSIFIED_OK = {"/static/<path:filename>", "/healthz", "/favicon.ico", "/login", "/logout"}
# The action recorded in the case's trail when a case route is refused.
DENIED_ACTION = {
    "/cases/<int:case_id>": "view",
    "/cases/<int:case_id>/trail": "view_trail",
    "/cases/<int:case_id>/trail.json": "export_trail",
    "/cases/<int:case_id>/trail/print": "view_trail",
    "/cases/<int:case_id>/trail.pdf": "export_trail",
    "/cases/<int:case_id>/steps/<step_id>": "complete",
    "/cases/<int:case_id>/files/<sha256>": "download_file",
    "/cases/<int:case_id>/retry": "retry",
    "/api/v1/cases/<int:case_id>": "view",
    "/api/v1/cases/<int:case_id>/trail": "export_trail",
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
    if base == "public_post":
        return 422
    if base in ("public_track", "public_redirect"):
        return 302
    if base == "public_closed":
        return 409
    if base == "public_missing":
        return 404
    if base == "home":
        return 302
    if base == "overview":  # 镇街总览: township and district staff only
        return 200 if user in ("township_staff", "district_admin") else 403
    if base.startswith("admin"):  # 管理: township and district administrators only
        if user not in ("township_staff", "district_admin"):
            return 403
        # the home redirects; the target user (a 东岙村 cadre) may be seen; POSTs carry no valid form (422)
        return {"admin_home": 302, "admin_post": 422, "admin_user_post": 422, "admin_user_action": 302}.get(base, 200)
    if base in ("warnings", "api_warnings"):  # 预警: supervisors and township/district staff, in their scope
        if user not in WARNING_READERS:
            return 403
        return 200 if org_code is None or sees else 404
    if base == "warnings_handle":  # only supervisors handle; the form carries no opinion (422)
        if user not in WARNING_READERS:
            return 403
        if not sees:
            return 404
        return 422 if user in ("supervisor", "nanxi_cadre") else 403
    if base == "dashboard":  # not party_branch / joint_meeting alone; nanxi_all holds committee@NANXI
        return 200 if user in ("supervisor", "nanxi_cadre", "township_staff", "district_admin") else 403
    if base in ("cadres", "cadre_file", "cadre_note"):  # supervisors; the cadre is a 东岙村 cadre
        if user not in ("supervisor", "nanxi_cadre"):
            return 403
        if base == "cadres":
            return 200
        if user == "nanxi_cadre":
            return 404
        return 200 if base == "cadre_file" else 422  # the posted form has no kind
    if base == "editor_page":
        return 200 if user in ("township_staff", "district_admin") else 403
    if base == "editor_import":  # reaches the view: no file sent
        return 422 if user in ("township_staff", "district_admin") else 403
    if base == "editor_form":  # reaches the view: the posted form is no step table (422)
        return 422 if user in ("township_staff", "district_admin") else 403
    if base == "library_form":  # reaches the view: no step table / no JSON body (422)
        return 422 if user == "district_admin" else 403
    if base == "library_edit":
        return 200 if user == "district_admin" else 403
    if base in ("variant_page", "variant_open", "variant_missing"):
        if user not in ("township_staff", "district_admin"):
            return 403
        return {"variant_page": 200, "variant_open": 302, "variant_missing": 404}[base]
    if base == "library_publish":  # reaches the view: no draft to publish
        return 404 if user == "district_admin" else 403
    if base == "signout":
        return 302
    if base == "case_retry":  # township and district administrators of the case's village
        return 302 if sees and user in ("township_staff", "district_admin") else 403
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
    if base == "case_file":
        return 404 if sees else 403  # no file is attached to the case: 404 for those who may see it
    if base == "api_upload":
        return 422  # reaches the view: the JSON body has no file parts
    if base == "api_start":
        return 422  # reaches the view: the body names no procedure and no organization
    if base == "case_complete":
        return 302 if org_code in STEP_ROLE.get(user, set()) else 403
    if base == "api_case_complete":
        return 200 if org_code in STEP_ROLE.get(user, set()) else 403
    raise AssertionError(f"unknown route kind {kind}")


class Shared:
    """One app, its users and a V-DEC-01 case at each village, for the GET cells: they change nothing but
    the denials they record, which each cell checks as a difference."""

    def __init__(self, xw, people):
        self.xw, self.people, self.app = xw, people, make_app(xw)
        self.cases = {"DONGAO": xw.start_case("V-DEC-01", "DONGAO", people["party_branch"]),
                      "NANXI": xw.start_case("V-DEC-01", "NANXI", people["nanxi_all"])}
        self.warnings = {code: _warning_at(xw, code) for code in ORGS.values()}
        with xw.db.write() as s:  # 示范镇's draft variant of V-DEC-01, for the variant page's cells
            variants.open_variant(s, "V-DEC-01", "SFZ")
        self.clients: dict[str, object] = {}

    def client(self, user: str):
        if user not in self.clients:
            self.clients[user] = _client(self.app, self.people, user)
        return self.clients[user]


@pytest.fixture(scope="module")
def shared(shared_xw):
    return Shared(*shared_xw)


@pytest.mark.parametrize("method,rule,user,org", [c for c in _cells() if c.values[0] == "GET"])
def test_permission_matrix_get(shared, method, rule, user, org):
    xw, people = shared.xw, shared.people
    case = shared.cases[ORGS[org]] if "<int:case_id>" in rule else None
    before = _denials(xw, case) if case is not None else []
    _cell(shared.app, xw, people, shared.cases["DONGAO"], method, rule, user, org, case=case, before=before,
          client=shared.client(user), warning=shared.warnings.get(ORGS.get(org)))


@pytest.mark.parametrize("method,rule,user,org", [c for c in _cells() if c.values[0] != "GET"])
def test_permission_matrix_post(app, xw, people, case_id, method, rule, user, org):
    case = None
    if "<int:case_id>" in rule:
        case = case_id if ORGS.get(org) == "DONGAO" else xw.start_case("V-DEC-01", "NANXI", people["nanxi_all"])
    warning = _warning_at(xw, ORGS[org]) if "<int:warning_id>" in rule else None
    _cell(app, xw, people, case_id, method, rule, user, org, case=case, before=[], client=_client(app, people, user),
          warning=warning)


def _cell(app, xw, people, case_id, method, rule, user, org, *, case, before, client, warning):
    org_code = ORGS.get(org)
    kind = ROUTES[(method, rule)]
    url = rule.replace("<int:case_id>", str(case)).replace("<step_id>", "collect").replace("<sha256>", "0" * 64) \
        .replace("<username>", people["party_branch"])
    url = url.replace("<procedure_id>", "V-DEC-01") if rule.startswith(("/procedures/", "/dashboard/")) else url
    url = url.replace("<org_code>", "SFZ") if rule.startswith("/procedures/") else url  # the township of a variant
    url = url.replace("<chart>", "trend").replace("<fmt>", "xlsx")
    if "<int:warning_id>" in rule:
        url = url.replace("<int:warning_id>", str(warning))
    if rule.startswith("/public/"):
        url = url.replace("<org_code>", "DONGAO").replace("<procedure_id>", "V-DEC-01")
        url = url.replace("<code>", xw.show_case(case_id)["tracking_code"]).replace("<receipt>", "ABCD-EFGH-JKMN")
        url += "?code=ABCD-EFGH-JKMN" if kind == "public_track" else ""
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
    assert response.status_code != 400, ("the CSRF token was refused (or the request was malformed): the test must "
                                         f"check authorization; the page said {response.get_data(as_text=True)[:600]!r}")

    username = people[USERS[user]] if USERS[user] else None
    if username is None:
        if kind.startswith("public"):
            assert response.status_code == _expect(kind, user, org_code)
        elif kind == "home":
            assert response.status_code == 302 and response.location == "/tasks"
        elif api:
            assert response.status_code == 401 and response.json == {"error": "unauthorized"}
        else:
            assert response.status_code == 302 and response.location.startswith("/login"), response.status_code
        if case is not None:
            assert _denials(xw, case) == before
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
        assert _denials(xw, case) == before + [(username, DENIED_ACTION[rule])]
        assert steps == ["collect"]
        assert all(r.ok for r in xw.verify(case))
    else:
        assert _denials(xw, case) == before
        assert steps == (["propose"] if method == "POST" and not kind.startswith("case_retry") else ["collect"])


def _warning_at(xw, org_code: str) -> int:
    """A warning at a village (raised by the engine's store, as a rule would)."""
    from engine.services.supervision import warnings
    from storage.models import Organization

    with xw.db.write() as s:
        org_id = s.query(Organization.id).filter(Organization.code == org_code).scalar()
        return warnings.store(s, [warnings.Finding("XW-01", org_id, f"matrix|{org_code}", "矩阵测试预警", {})])[0]["id"]


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
