"""管理: users, roles, local parameters and the system chain, through Flask's test client on the real
test database. Township staff administer their township and its villages; the district administrator
the whole district."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from engine.core import audit, directory
from storage.models import AuditEvent, ParameterSetting, RoleAssignment, User
from web_helpers import PASSWORD, login, token_of


@pytest.fixture
def other_township(xw):
    """A second township (启泰镇) with a village, outside 示范镇's administration."""
    with xw.db.write() as s:
        directory.add_org(s, "QTZ", "启泰镇", "township", "SFQ")
        directory.add_org(s, "XICUN", "西村", "village", "QTZ")
    return "XICUN"


def system_events(xw, *types: str) -> list[dict]:
    with xw.db.read() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.chain == audit.SYSTEM_CHAIN).order_by(AuditEvent.seq))
        return [audit.event_dict(e) for e in rows if not types or e.type in types]


def roles_of(xw, username: str) -> set[str]:
    with xw.db.read() as s:
        return {r for u in directory.list_users(s) if u["username"] == username for r in u["roles"]}


def post(client, url: str, **data):
    return client.post(url, data={**data, "csrf_token": client.csrf})


def create(client, username: str, role: str = "party_branch", org: str = "DONGAO", password: str = "initial-pass-1",
           **extra):
    return post(client, "/admin/users/new", username=username, display_name=extra.pop("display_name", "新干部"),
                password=password, confirm=extra.pop("confirm", password), role=role, org=org, **extra)


def system_chain_ok(xw) -> bool:
    with xw.db.read() as s:
        return audit.verify_system(s).ok


# --- users ------------------------------------------------------------------------------------------

def test_township_staff_creates_a_user_who_then_sees_the_villages_tasks(app, xw, people, case_id):
    staff = login(app, people["township_staff"])
    nav = staff.get("/tasks")
    assert 'href="/admin/users"' in nav.text and ">管理<" in nav.text
    form = staff.get("/admin/users/new")
    assert form.status_code == 200 and "创建用户" in form.text and "东岙村" in form.text
    assert "启泰镇" not in form.text
    created = create(staff, "li.cadre", "joint_meeting", "DONGAO", display_name="李新")
    assert created.status_code == 302 and created.location == "/admin/users/li.cadre"
    page = staff.get("/admin/users/li.cadre")
    assert "已创建用户“li.cadre”" in page.text and "李新" in page.text
    granted = post(staff, "/admin/users/li.cadre/roles", role="party_branch", org="DONGAO")
    assert granted.status_code == 302
    assert roles_of(xw, "li.cadre") == {"joint_meeting@DONGAO", "party_branch@DONGAO"}
    # The new user signs in with the initial password and sees 东岙村's step for their role.
    newbie = login(app, "li.cadre", "initial-pass-1")
    tasks = newbie.get("/tasks")
    assert tasks.status_code == 200 and f"/cases/{case_id}" in tasks.text and "东岙村" in tasks.text
    assert ">管理<" not in tasks.text and newbie.get("/admin/users").status_code == 403
    # The system chain records who did what; the list shows the user with their roles.
    added = system_events(xw, "user_added")[-1]
    assert added["actor"] == people["township_staff"] and added["data"] == {
        "username": "li.cadre", "roles": ["joint_meeting@DONGAO"]}
    grant = system_events(xw, "role_granted")[-1]
    assert grant["actor"] == people["township_staff"] and grant["data"]["role"] == "party_branch@DONGAO"
    listing = staff.get("/admin/users?q=li.c")
    assert 'data-user="li.cadre"' in listing.text and "村(社区)两委联席会议 · 东岙村" in listing.text
    assert re.search(r'id="user-count">1<', listing.text)
    assert system_chain_ok(xw)


def test_create_user_errors_are_shown_and_nothing_is_created(app, xw, people):
    staff = login(app, people["township_staff"])
    short = create(staff, "wang", password="short")
    assert short.status_code == 422 and "密码至少8位" in short.text and 'value="wang"' in short.text
    mismatch = create(staff, "wang", confirm="another-pass-1")
    assert mismatch.status_code == 422 and "两次输入的密码不一致" in mismatch.text
    bad_name = create(staff, "王 五")
    assert bad_name.status_code == 422 and "用户名" in bad_name.text
    wrong_level = create(staff, "wang", role="township_staff", org="DONGAO")
    assert wrong_level.status_code == 422 and "不能设在村“东岙村”" in wrong_level.text
    taken = create(staff, people["party_branch"])
    assert taken.status_code == 409
    with xw.db.read() as s:
        assert s.scalar(select(User).where(User.username == "wang")) is None
    assert system_events(xw, "user_added")[-1]["data"]["username"] != "wang"


def test_admin_cannot_act_outside_their_area(app, xw, people, other_township):
    staff = login(app, people["township_staff"])
    refused = create(staff, "xi.cadre", "party_branch", other_township)
    assert refused.status_code == 403 and "不在您的管辖范围内" in refused.text
    with xw.db.write() as s:
        directory.add_user(s, "xi_only", PASSWORD, ["party_branch@XICUN"])
        directory.add_user(s, "both_places", PASSWORD, ["committee@DONGAO", "committee@XICUN"])
    # A user of another township: not visible, not changeable.
    assert staff.get("/admin/users/xi_only").status_code == 403
    assert 'data-user="xi_only"' not in staff.get("/admin/users").text
    # A 东岙村 cadre cannot be given a role in 西村.
    grant = post(staff, f"/admin/users/{people['party_branch']}/roles", role="committee", org=other_township)
    assert grant.status_code == 403 and "西村" in grant.text
    # A user who also holds a role outside the area: visible, but refused with a clear message.
    both = staff.get("/admin/users/both_places")
    assert both.status_code == 200 and "辖区外" in both.text and "重置密码" not in both.text
    for url, data in (("/admin/users/both_places/roles", {"role": "handler", "org": "DONGAO"}),
                      ("/admin/users/both_places/roles/revoke", {"role": "committee", "org": "DONGAO"}),
                      ("/admin/users/both_places/password", {"password": "new-pass-123", "confirm": "new-pass-123"}),
                      ("/admin/users/both_places/active", {"active": "0"})):
        response = post(staff, url, **data)
        assert response.status_code == 403, url
        assert "管辖范围外任职" in response.text
    assert roles_of(xw, "both_places") == {"committee@DONGAO", "committee@XICUN"}
    # No one grants themselves anything, or changes their own account here.
    me = people["township_staff"]
    own = post(staff, f"/admin/users/{me}/roles", role="township_government", org="SFZ")
    assert own.status_code == 403 and "不能在管理页面修改自己" in own.text
    assert roles_of(xw, me) == {"township_staff@SFZ"}
    # The district administrator administers both townships.
    district = login(app, people["district_admin"])
    assert post(district, "/admin/users/both_places/roles/revoke", role="committee", org="XICUN").status_code == 302
    assert roles_of(xw, "both_places") == {"committee@DONGAO"}
    # Unknown users and organizations: 404.
    assert staff.get("/admin/users/nobody-here").status_code == 404
    assert post(staff, f"/admin/users/{people['party_branch']}/roles", role="committee", org="NOPE").status_code == 404
    assert staff.get("/admin/params?org=NOPE").status_code == 404
    assert system_chain_ok(xw)


def test_revoke_a_role(app, xw, people, case_id):
    staff = login(app, people["township_staff"])
    user = people["party_branch"]
    assert post(staff, f"/admin/users/{user}/roles", role="committee", org="DONGAO").status_code == 302
    revoked = post(staff, f"/admin/users/{user}/roles/revoke", role="party_branch", org="DONGAO")
    assert revoked.status_code == 302
    assert roles_of(xw, user) == {"committee@DONGAO"}
    event = system_events(xw, "role_revoked")[-1]
    assert event["actor"] == people["township_staff"] and event["data"] == {"username": user,
                                                                              "role": "party_branch@DONGAO"}
    # The revocation bites at once: the step of party_branch is gone from the user's tasks.
    assert f"/cases/{case_id}" not in login(app, user).get("/tasks").text
    # The last role is not revoked (deactivate the account instead).
    last = post(staff, f"/admin/users/{user}/roles/revoke", role="committee", org="DONGAO")
    assert last.status_code == 422 and "唯一的角色" in last.text
    assert roles_of(xw, user) == {"committee@DONGAO"}
    assert system_chain_ok(xw)


def test_deactivated_user_cannot_sign_in_and_reset_password(app, xw, people):
    staff = login(app, people["township_staff"])
    user = people["committee"]
    session = login(app, user)
    assert session.get("/tasks").status_code == 200
    off = post(staff, f"/admin/users/{user}/active", active="0")
    assert off.status_code == 302
    assert "已停用" in staff.get(f"/admin/users/{user}").text
    # The open session ends at once; signing in again is refused like a wrong password.
    assert session.get("/tasks").status_code == 302
    client = app.test_client()
    token = token_of(client.get("/login").text)
    refused = client.post("/login", data={"username": user, "password": PASSWORD, "csrf_token": token})
    assert refused.status_code == 401 and "用户名或密码不正确" in refused.text
    assert system_events(xw, "login_failed")[-1]["data"]["reason"] == "inactive"
    assert post(staff, f"/admin/users/{user}/active", active="1").status_code == 302
    assert login(app, user).get("/tasks").status_code == 200
    # Password reset: the old password stops working, the new one works.
    short = post(staff, f"/admin/users/{user}/password", password="short", confirm="short")
    assert short.status_code == 422 and "密码至少8位" in short.text
    assert post(staff, f"/admin/users/{user}/password", password="reset-pass-99",
                confirm="reset-pass-99").status_code == 302
    assert login(app, user, "reset-pass-99").get("/tasks").status_code == 200
    types = [(e["type"], e["actor"]) for e in system_events(xw, "user_deactivated", "user_reactivated", "password_set")]
    assert types == [("user_deactivated", people["township_staff"]), ("user_reactivated", people["township_staff"]),
                     ("password_set", people["township_staff"])]
    assert system_chain_ok(xw)


def test_user_list_pages_fifty_at_a_time(app, xw, people):
    with xw.db.write() as s:
        for i in range(55):
            directory.add_user(s, f"bulk{i:02d}", PASSWORD, ["handler@NANXI"], display_name=f"批量{i}")
    staff = login(app, people["township_staff"])
    first = staff.get("/admin/users?q=bulk")
    assert re.search(r'id="user-count">55<', first.text)
    assert first.text.count('data-user="bulk') == 50 and "第 1 / 2 页" in first.text
    second = staff.get("/admin/users?q=bulk&page=2")
    assert second.text.count('data-user="bulk') == 5 and 'data-user="bulk54"' in second.text
    assert 'data-user="bulk07"' in staff.get("/admin/users?q=批量7").text


# --- parameters -------------------------------------------------------------------------------------

def test_parameters_inherit_and_a_village_overrides_its_township(app, xw, people):
    staff = login(app, people["township_staff"])
    page = staff.get("/admin/params?org=DONGAO")
    assert page.status_code == 200 and 'id="p-vrep_quorum"' in page.text and "事项默认值" in page.text
    assert "东岙村 → 示范镇 → 示范区 → 事项默认值" in page.text
    assert post(staff, "/admin/params", org="SFZ", key="vrep_quorum", value="3/4").status_code == 302
    assert post(staff, "/admin/params", org="DONGAO", key="vrep_quorum", value="4/5").status_code == 302

    def row(org: str) -> str:
        text = staff.get(f"/admin/params?org={org}&q=vrep_quorum").text
        found = re.search(r'<tr id="p-vrep_quorum".*?</tr>', text, re.S)
        assert found, text[:500]
        return found.group(0)

    dongao, nanxi = row("DONGAO"), row("NANXI")
    assert "<strong>4/5</strong>" in dongao and "本级" in dongao and "东岙村" in dongao
    assert "已覆盖:示范镇 设定的 3/4" in dongao
    assert "<strong>3/4</strong>" in nanxi and "上级" in nanxi and "示范镇" in nanxi
    # The engine reads the same values.
    from engine.core import procedures
    from storage.models import Procedure

    with xw.db.read() as s:
        d = procedures.runtime(s, s.get(Procedure, "V-DEC-01").current_version_id).definition
        values = procedures.effective_params(s, d, directory.get_org(s, "DONGAO"))
    assert str(values["vrep_quorum"]["value"]) == "4/5" and values["vrep_quorum"]["source"] == "DONGAO"
    # Reset at the village: the township's value applies again.
    assert post(staff, "/admin/params", org="DONGAO", key="vrep_quorum", action="reset").status_code == 302
    assert "<strong>3/4</strong>" in row("DONGAO")
    events = system_events(xw, "parameter_set", "parameter_reset")
    assert [(e["type"], e["data"]["org"], e["actor"]) for e in events] == [
        ("parameter_set", "SFZ", people["township_staff"]), ("parameter_set", "DONGAO", people["township_staff"]),
        ("parameter_reset", "DONGAO", people["township_staff"])]
    assert system_chain_ok(xw)


@pytest.mark.parametrize("key,value,message", [("vrep_quorum", "abc", "无效"), ("vrep_quorum", "3/2", "无效"),
                                               ("vrep_quorum", "1/2", "村民代表会议的到会人数须达到应到人数的三分之二以上"),
                                               ("village_publicity_days", "-3", "不能为负数"),
                                               ("village_publicity_days", "", "请填写参数值")])
def test_invalid_parameter_value_is_shown_inline_and_nothing_changes(app, xw, people, key, value, message):
    staff = login(app, people["township_staff"])
    before = len(system_events(xw))
    response = post(staff, "/admin/params", org="DONGAO", key=key, value=value)
    assert response.status_code == 422
    found = re.search(rf'<tr id="p-{key}".*?</tr>', response.text, re.S)
    assert found and message in found.group(0) and 'class="error-text"' in found.group(0)
    with xw.db.read() as s:
        assert s.scalars(select(ParameterSetting)).all() == []
    assert len(system_events(xw)) == before


def test_parameters_outside_the_area_are_refused(app, xw, people, other_township):
    staff = login(app, people["township_staff"])
    assert staff.get(f"/admin/params?org={other_township}").status_code == 403
    assert post(staff, "/admin/params", org="SFQ", key="vrep_quorum", value="3/4").status_code == 403
    assert post(staff, "/admin/params", org="DONGAO", key="no_such_param", value="1").status_code == 404
    district = login(app, people["district_admin"])
    assert post(district, "/admin/params", org="SFQ", key="vrep_quorum", value="3/4").status_code == 302
    assert "启泰镇" in district.get("/admin/params?org=XICUN").text


# --- the system chain, and who may use any of this ----------------------------------------------------

def test_every_admin_action_is_in_the_audit_page_and_the_chain_verifies(app, xw, people):
    staff = login(app, people["township_staff"])
    create(staff, "zhao.liu", "handler", "NANXI", display_name="赵六")
    post(staff, "/admin/users/zhao.liu/roles", role="committee", org="NANXI")
    post(staff, "/admin/users/zhao.liu/roles/revoke", role="handler", org="NANXI")
    post(staff, "/admin/users/zhao.liu/password", password="another-1234", confirm="another-1234")
    post(staff, "/admin/users/zhao.liu/active", active="0")
    post(staff, "/admin/users/zhao.liu/active", active="1")
    post(staff, "/admin/params", org="NANXI", key="major_amount", value="20000")
    post(staff, "/admin/params", org="NANXI", key="major_amount", action="reset")
    page = staff.get("/admin/audit")
    assert page.status_code == 200 and "管理留痕校验通过" in page.text
    for text in ("新建用户 赵六", "授予 赵六 角色 南溪村的村(居)民委员会", "撤销 赵六 的角色 南溪村的经办人",
                 "重置 赵六 的密码", "停用用户 赵六", "恢复启用用户 赵六",
                 "设定南溪村的参数“须走五议两公开的金额起点”:20000", "取消南溪村对参数“须走五议两公开的金额起点”的本级设定"):
        assert text in page.text, text
    assert "major_amount" not in page.text and "NANXI" not in page.text.split("<footer")[0].split("</nav>")[-1]
    seqs = [int(s) for s in re.findall(r'data-seq="(\d+)"', page.text)]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) == min(50, len(system_events(xw)))
    mine = [e for e in system_events(xw) if e["actor"] == people["township_staff"]]
    assert len(mine) == 8
    # A tampered system chain shows the failing badge.
    from sqlalchemy import update

    from conftest import bypass_append_only

    with xw.db.write() as s:
        bypass_append_only(s)
        s.execute(update(AuditEvent).where(AuditEvent.chain == audit.SYSTEM_CHAIN, AuditEvent.seq == mine[0]["seq"])
                  .values(actor="someone-else"))
    assert "管理留痕校验未通过" in staff.get("/admin/audit").text


def test_audit_page_pages_newest_first(app, xw, people):
    staff = login(app, people["township_staff"])
    total = len(system_events(xw))
    assert total > 50  # procedures published, organizations and test users added
    last = staff.get(f"/admin/audit?page={(total + 49) // 50}")
    seqs = [int(s) for s in re.findall(r'data-seq="(\d+)"', last.text)]
    assert seqs and seqs[-1] == 1


ADMIN_URLS = [("GET", "/admin"), ("GET", "/admin/users"), ("GET", "/admin/users/new"),
              ("POST", "/admin/users/new"), ("GET", "/admin/users/{u}"), ("POST", "/admin/users/{u}/roles"),
              ("POST", "/admin/users/{u}/roles/revoke"), ("POST", "/admin/users/{u}/password"),
              ("POST", "/admin/users/{u}/active"), ("POST", "/admin/users/{u}/sessions/end"),
              ("GET", "/admin/params"), ("POST", "/admin/params"),
              ("GET", "/admin/audit")]


def test_admin_urls_cover_every_admin_route(app):
    rules = {(m, r.rule.replace("<username>", "{u}")) for r in app.url_map.iter_rules()
             if r.rule.startswith("/admin") for m in r.methods - {"HEAD", "OPTIONS"}}
    assert rules == set(ADMIN_URLS)


@pytest.mark.parametrize("key", ["party_branch", "supervision_committee", "township_discipline", "nanxi_all"])
def test_non_admins_get_403_on_every_admin_route(app, xw, people, key):
    client = login(app, people[key])
    assert ">管理<" not in client.get("/tasks").text
    before = len(system_events(xw))
    for method, url in ADMIN_URLS:
        url = url.format(u=people["committee"])
        data = {"csrf_token": client.csrf, "username": "x.y", "password": "long-enough-1", "confirm": "long-enough-1",
                "role": "committee", "org": "DONGAO", "active": "0", "key": "vrep_quorum", "value": "1/2"}
        response = client.get(url) if method == "GET" else client.post(url, data=data)
        assert response.status_code == 403, (method, url)
        assert "无权访问" in response.text
    after = system_events(xw)[before:]
    # Nothing changed; the refusals are recorded in the system chain (in aggregate, issue #13).
    assert [e for e in after if e["type"] != "request_refused"] == []
    assert after and after[0]["actor"] == people[key] and after[0]["data"]["status"] == 403


def test_admin_posts_need_the_csrf_token(app, xw, people):
    staff = login(app, people["township_staff"])
    before = len(system_events(xw))
    for url, data in (("/admin/users/new", {"username": "csrf.test", "password": "long-enough-1",
                                            "confirm": "long-enough-1", "role": "committee", "org": "DONGAO"}),
                      (f"/admin/users/{people['committee']}/active", {"active": "0"}),
                      ("/admin/params", {"org": "DONGAO", "key": "vrep_quorum", "value": "1/2"})):
        assert staff.post(url, data=data).status_code == 400
        assert staff.post(url, data={**data, "csrf_token": "forged"}).status_code == 400
    after = system_events(xw)[before:]
    assert [e for e in after if e["type"] != "request_refused"] == []
    assert after and after[0]["data"]["reason"] == "csrf"
    with xw.db.read() as s:
        assert s.scalar(select(User).where(User.username == "csrf.test")) is None
        assert s.scalar(select(User.active).where(User.username == people["committee"])) is True


def test_anonymous_users_are_sent_to_sign_in(app):
    client = app.test_client()
    for url in ("/admin", "/admin/users", "/admin/params", "/admin/audit"):
        response = client.get(url)
        assert response.status_code == 302 and response.location.startswith("/login")


def test_display_names_are_escaped(app, xw, people):
    staff = login(app, people["township_staff"])
    create(staff, "evil", display_name="<script>alert(1)</script>")
    for url in ("/admin/users", "/admin/users/evil"):
        text = staff.get(url).text
        assert "<script>alert(1)</script>" not in text and "&lt;script&gt;" in text
    with xw.db.read() as s:
        assert s.scalars(select(RoleAssignment).join(User).where(User.username == "evil")).all()
