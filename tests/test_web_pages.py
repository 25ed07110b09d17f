"""The web pages through Flask's test client on the real test database (no mocks)."""

from __future__ import annotations

import json
import re

from sqlalchemy import select, update

from engine.core import audit
from engine.trailcheck import verify_trail
from storage.models import AuditEvent, User
from web_helpers import COLLECT, PASSWORD, login, token_of



def system_events(xw, type_):
    with xw.db.read() as s:
        return [audit.event_dict(e) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.chain == "system", AuditEvent.type == type_).order_by(AuditEvent.seq))]


# --- sign-in ---------------------------------------------------------------------------------------

def test_login_and_logout(app, people):
    client = app.test_client()
    first = client.get("/tasks")
    assert first.status_code == 302 and first.location.startswith("/login")
    page = client.get("/login")
    assert page.status_code == 200 and "干部登录" in page.text
    wrong = client.post("/login", data={"username": people["party_branch"], "password": "nope-nope",
                                        "csrf_token": token_of(page.text)})
    assert wrong.status_code == 401 and "用户名或密码不正确" in wrong.text
    ok = client.post("/login", data={"username": people["party_branch"], "password": PASSWORD,
                                     "csrf_token": token_of(page.text), "next": "/cases"})
    assert ok.status_code == 302 and ok.location == "/cases"
    cookie = ok.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    tasks = client.get("/tasks")
    assert tasks.status_code == 200 and "我的待办" in tasks.text and people["party_branch"] in tasks.text
    out = client.post("/logout", data={"csrf_token": token_of(tasks.text)})
    assert out.status_code == 302
    assert client.get("/tasks").status_code == 302


def test_login_never_redirects_off_site(app, people):
    client = app.test_client()
    page = client.get("/login")
    response = client.post("/login", data={"username": people["party_branch"], "password": PASSWORD,
                                           "csrf_token": token_of(page.text), "next": "//evil.example/x"})
    assert response.location == "/"  # home, which sends each user to where they start (tasks here)
    assert client.get("/").location == "/tasks"


def test_session_cookie_is_secure_outside_tests(xw, setenv):
    from webui import create_app

    setenv("XIAOWEI_COOKIE_SECURE", None)
    assert create_app({"SECRET_KEY": "k"}, db=xw.db).config["SESSION_COOKIE_SECURE"] is True
    assert create_app({"TESTING": True}, db=xw.db).config["SESSION_COOKIE_SECURE"] is False


def test_failures_slow_down_one_address_and_never_lock_the_user_out(app, xw, people, frozen):
    """Five wrong passwords from one address: that address waits (growing delays); the user signs in
    from another address at once, and from the first one after the delay (issue #13)."""
    user = people["party_branch"]
    client = app.test_client()
    token = token_of(client.get("/login").text)
    statuses = [client.post("/login", data={"username": user, "password": f"wrong-{i}", "csrf_token": token})
                .status_code for i in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    waiting = client.post("/login", data={"username": user, "password": PASSWORD, "csrf_token": token})
    assert waiting.status_code == 429 and "秒后再试" in waiting.text and "锁定" not in waiting.text
    elsewhere = app.test_client()
    other_token = token_of(elsewhere.get("/login").text)
    ok = elsewhere.post("/login", data={"username": user, "password": PASSWORD, "csrf_token": other_token},
                        environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert ok.status_code == 302
    with xw.db.read() as s:
        row = s.scalar(select(User).where(User.username == user))
        assert row.locked_until is None
    failures = system_events(xw, "login_failed")
    assert len(failures) == 1 and failures[0]["data"]["failures"] == 1  # aggregated, not one event each
    assert all(r.ok for r in xw.verify())
    frozen.advance(seconds=3)
    ok = client.post("/login", data={"username": user, "password": PASSWORD, "csrf_token": token})
    assert ok.status_code == 302
    failures = system_events(xw, "login_failed")
    assert failures[-1]["data"]["failures"] == 4 and failures[-1]["data"]["ended"] == "signed_in"


def test_unknown_user_failure_is_recorded_without_a_user(app, xw):
    client = app.test_client()
    token = token_of(client.get("/login").text)
    assert client.post("/login", data={"username": "nobody", "password": "x" * 9, "csrf_token": token}).status_code == 401
    event = system_events(xw, "login_failed")[-1]
    assert event["actor"] == "" and event["data"]["username"] == "nobody" and event["data"]["reason"] == "unknown_user"


def test_password_change(app, xw, people):
    user = people["committee"]
    client = login(app, user)
    bad = client.post("/password", data={"current": PASSWORD, "new": "short", "confirm": "short",
                                         "csrf_token": client.csrf})
    assert bad.status_code == 422 and "新密码至少8位" in bad.text
    other = login(app, user)  # a second session ends when the password changes
    ok = client.post("/password", data={"current": PASSWORD, "new": "new-password-1", "confirm": "new-password-1",
                                        "csrf_token": client.csrf})
    assert ok.status_code == 200 and "密码已修改" in ok.text
    assert client.get("/tasks").status_code == 200
    assert other.get("/tasks").status_code == 302
    login(app, user, "new-password-1")


# --- CSRF ------------------------------------------------------------------------------------------

def test_post_without_csrf_token_is_refused(app, xw, people, case_id):
    fresh = app.test_client()
    fresh.get("/login")
    assert fresh.post("/login", data={"username": people["party_branch"], "password": PASSWORD}).status_code == 400
    client = login(app, people["party_branch"])
    before = xw.audit_event_count()
    url = f"/cases/{case_id}/steps/collect"
    missing = client.post(url, data=COLLECT)
    assert missing.status_code == 400 and "页面已过期" in missing.text
    assert client.post(url, data={**COLLECT, "csrf_token": "forged"}).status_code == 400
    assert client.post("/logout").status_code == 400
    # Nothing changed; the refusals are recorded once in the system chain (aggregated, issue #13).
    assert xw.audit_event_count() == before + 1
    assert system_events(xw, "request_refused")[-1]["data"]["reason"] == "csrf"
    assert [t["step_id"] for t in xw.tasks(case_id)] == ["collect"]


# --- tasks -----------------------------------------------------------------------------------------

def test_task_list_shows_only_the_users_steps(app, xw, people, frozen):
    mine = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"], {"title": "东岙村道路"})
    theirs = xw.start_case("V-DEC-01", "NANXI", people["nanxi_all"], {"title": "南溪村水渠"})
    page = login(app, people["party_branch"]).get("/tasks")
    assert page.status_code == 200
    assert "东岙村道路" in page.text and "南溪村水渠" not in page.text
    assert f"/cases/{mine}" in page.text and f"/cases/{theirs}" not in page.text
    assert re.search(r'id="task-count">1<', page.text)
    assert "征求意见(村民说事)" in page.text and "东岙村" in page.text
    other_role = login(app, people["joint_meeting"]).get("/tasks")
    assert "东岙村道路" not in other_role.text
    nanxi = login(app, people["nanxi_all"]).get("/tasks")
    assert "南溪村水渠" in nanxi.text and "东岙村道路" not in nanxi.text
    # Overdue after the 10-day limit: marked, counted and filterable.
    frozen.advance(days=11)
    client = login(app, people["party_branch"])
    late = client.get("/tasks")
    assert "is-overdue" in late.text and "已超期" in late.text
    assert "东岙村道路" in client.get("/tasks?overdue=1").text
    assert "东岙村道路" not in client.get("/tasks?procedure=B-SVC-01").text
    assert "东岙村道路" not in client.get("/tasks?org=NANXI").text


# --- the step page ---------------------------------------------------------------------------------

def test_cadre_completes_the_first_step_after_a_form_error(app, xw, people, case_id):
    client = login(app, people["party_branch"])
    page = client.get(f"/cases/{case_id}")
    assert page.status_code == 200
    for text in ("征求意见(村民说事)", "事项名称", "意见征集记录", "办理时限", "10天", "<svg", "当前", "查询码"):
        assert text in page.text
    assert '<option value="project"' in page.text  # choice → select
    before = xw.audit_event_count()
    broken = {k: v for k, v in COLLECT.items() if k != "matter_title"}
    failed = client.post(f"/cases/{case_id}/steps/collect", data={**broken, "csrf_token": client.csrf})
    assert failed.status_code == 422
    assert "请填写“事项名称”" in failed.text and "/ " + "事项名称 is required" not in failed.text
    assert "群众普遍支持硬化村东道路" in failed.text  # the user's input is kept
    assert '<option value="project" selected' in failed.text
    assert xw.audit_event_count() == before
    assert [t["step_id"] for t in xw.tasks(case_id)] == ["collect"]
    done = client.post(f"/cases/{case_id}/steps/collect", data={**COLLECT, "csrf_token": client.csrf})
    assert done.status_code == 302 and done.location == f"/cases/{case_id}"
    after = client.get(done.location)
    assert "已提交“征求意见(村民说事)”" in after.text and "下一步" in after.text and "村党组织提议" in after.text
    assert [t["step_id"] for t in xw.tasks(case_id)] == ["propose"]
    info = xw.show_case(case_id)
    assert info["title"] == "村道硬化工程"
    completed = [e for e in info["history"] if e["type"] == "step_completed"][0]
    assert completed["actor"] == people["party_branch"] and completed["data"]["data"]["amount"] == "380000.00"
    # Submitting the same step again is a conflict, shown as a message.
    again = client.post(f"/cases/{case_id}/steps/collect", data={**COLLECT, "csrf_token": client.csrf})
    assert again.status_code == 302
    assert "已被办理" in client.get(again.location).text


def test_user_without_the_role_sees_no_form_and_cannot_post(app, xw, people, case_id):
    client = login(app, people["joint_meeting"])
    page = client.get(f"/cases/{case_id}")
    assert page.status_code == 200 and "提交办理" not in page.text and "待村(社区)党组织办理" in page.text
    refused = client.post(f"/cases/{case_id}/steps/collect", data={**COLLECT, "csrf_token": client.csrf})
    assert refused.status_code == 403
    denied = [e for e in xw.show_case(case_id)["history"] if e["type"] == "access_denied"]
    assert denied and denied[-1]["actor"] == people["joint_meeting"]


def test_other_village_gets_403_and_the_attempt_is_in_the_trail(app, xw, people, case_id):
    outsider = login(app, people["nanxi_all"])
    for url in (f"/cases/{case_id}", f"/cases/{case_id}/trail", f"/cases/{case_id}/trail.json"):
        response = outsider.get(url)
        assert response.status_code == 403 and "无权访问" in response.text
    post = outsider.post(f"/cases/{case_id}/steps/collect", data={**COLLECT, "csrf_token": outsider.csrf})
    assert post.status_code == 403
    assert [t["step_id"] for t in xw.tasks(case_id)] == ["collect"]
    denied = [e for e in xw.show_case(case_id)["history"] if e["type"] == "access_denied"]
    assert [(e["actor"], e["data"]["action"]) for e in denied] == [
        (people["nanxi_all"], "view"), (people["nanxi_all"], "view_trail"),
        (people["nanxi_all"], "export_trail"), (people["nanxi_all"], "complete")]
    trail = login(app, people["township_discipline"]).get(f"/cases/{case_id}/trail")
    assert "拒绝越权操作" in trail.text and people["nanxi_all"] in trail.text
    assert all(r.ok for r in xw.verify(case_id))


def test_unknown_ids_are_404(app, people, case_id):
    client = login(app, people["party_branch"])
    assert client.get("/cases/99999").status_code == 404
    assert client.get("/cases/99999/trail").status_code == 404
    assert client.post(f"/cases/{case_id}/steps/no_such_step", data={"csrf_token": client.csrf}).status_code == 404
    assert client.get("/no-such-page").status_code == 404


def test_user_input_is_escaped(app, xw, people):
    case = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"], {"title": "<script>alert(1)</script>"})
    client = login(app, people["party_branch"])
    for url in ("/tasks", f"/cases/{case}", f"/cases/{case}/trail", "/cases"):
        text = client.get(url).text
        assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "script-src 'none'" in client.get("/tasks").headers["Content-Security-Policy"]


def test_proxy_fields_for_a_proxy_step(app, xw, people):
    committee = people["committee"]
    case = xw.start_case("B-SVC-01", "DONGAO", committee)
    client = login(app, committee)
    page = client.get(f"/cases/{case}")
    assert "代办信息" in page.text and "被代办人姓名" in page.text and 'value="true"' in page.text
    data = {"applicant_name": "王大伯", "id_number": "11010519491231002X", "phone": "13800138000",
            "household_size": "2", "household_income": "800", "hardship_reason": "年老多病",
            "kin_of_cadre": "false", "authorization_signed": "true", "csrf_token": client.csrf}
    missing = client.post(f"/cases/{case}/steps/apply", data=data)
    assert missing.status_code == 422 and "代办须填写被代办人姓名" in missing.text and "王大伯" in missing.text
    done = client.post(f"/cases/{case}/steps/apply", data={**data, "on_behalf_of": "王大伯", "proxy_reason": "年老行动不便"})
    assert done.status_code == 302
    trail = client.get(f"/cases/{case}/trail").text
    assert "为 王大伯 代办" in trail and "年老行动不便" in trail


# --- trail -----------------------------------------------------------------------------------------

def test_trail_page_and_json_export(app, xw, people, case_id):
    from conftest import do_step

    do_step(xw, case_id, "collect", people)
    do_step(xw, case_id, "propose", people)
    client = login(app, people["township_discipline"])
    page = client.get(f"/cases/{case_id}/trail")
    assert page.status_code == 200
    for text in ("留痕校验通过", "发起事项", "办理“征求意见(村民说事)”", "会议“村党组织提议”", "事项名称",
                 "村(社区)党组织", "导出留痕", "<svg", "visited"):
        assert text in page.text
    events = xw.show_case(case_id)["history"]
    first = audit.iso(audit.db_time())
    assert first.startswith("2026-03-02T01:00")
    assert "2026-03-02 09:00" in page.text  # China time (UTC+8)
    exported = client.get(f"/cases/{case_id}/trail.json")
    assert exported.status_code == 200 and exported.mimetype == "application/json"
    assert verify_trail(exported.get_data(as_text=True)) == []
    assert len(json.loads(exported.get_data(as_text=True))["events"]) == len(events)


def test_trail_badge_shows_a_broken_chain(app, xw, people, case_id):
    from conftest import bypass_append_only

    with xw.db.write() as s:
        bypass_append_only(s)
        s.execute(update(AuditEvent).where(AuditEvent.chain == f"case:{case_id}", AuditEvent.seq == 1)
                  .values(actor="someone-else"))
    page = login(app, people["party_branch"]).get(f"/cases/{case_id}/trail")
    assert "留痕校验未通过" in page.text and "留痕校验通过" not in page.text


def test_gateway_decisions_show_label_and_inputs(app, xw, people, case_id):
    from conftest import do_step

    for step in ("collect", "propose"):
        do_step(xw, case_id, step, people)
    do_step(xw, case_id, "consult", people, overrides={"needs_township_review": False})
    page = login(app, people["party_branch"]).get(f"/cases/{case_id}/trail").text
    assert "流程判断" in page and "需报镇(街道)预审" in page and "党员大会审议" in page


# --- lists and starting ------------------------------------------------------------------------------

def test_case_list_and_supervisor_search(app, xw, people, case_id):
    nanxi = xw.start_case("V-DEC-01", "NANXI", people["nanxi_all"], {"title": "南溪村水渠"})
    mine = login(app, people["party_branch"]).get("/cases").text
    assert f"/cases/{case_id}" in mine and f"/cases/{nanxi}" not in mine and "辖区全部" not in mine
    sup = login(app, people["township_discipline"])
    assert f"/cases/{case_id}" not in sup.get("/cases").text
    everything = sup.get("/cases?scope=all").text
    assert f"/cases/{case_id}" in everything and f"/cases/{nanxi}" in everything
    only_nanxi = sup.get("/cases?scope=all&org=NANXI&status=running&procedure=V-DEC-01").text
    assert f"/cases/{nanxi}" in only_nanxi and f"/cases/{case_id}" not in only_nanxi


def test_start_a_case_from_the_catalogue(app, xw, people):
    client = login(app, people["party_branch"])
    page = client.get("/start")
    assert page.status_code == 200
    assert "村级重大决策事项(五议两公开)" in page.text and "《中华人民共和国村民委员会组织法》" in page.text
    assert page.text.count('class="panel" id="cat-') == 9
    started = client.post("/start", data={"org": "DONGAO", "procedure": "V-DEC-01", "title": "文化礼堂修缮",
                                          "csrf_token": client.csrf})
    assert started.status_code == 302
    case = int(started.location.rsplit("/", 1)[1])
    assert xw.show_case(case)["title"] == "文化礼堂修缮"
    assert "事项已发起" in client.get(started.location).text
    assert client.get("/start?org=NANXI").status_code == 403


def test_township_staff_register_a_report_received_by_phone_or_letter(app, xw, people):
    """The township's own procedure (T-SUP-01) starts from /start at the township, by its
    discipline office; a village cadre is not offered the township at all."""
    staff = login(app, people["township_discipline"])
    page = staff.get("/start?org=SFZ")
    assert page.status_code == 200 and "码上举报受理与办理" in page.text
    assert "村级重大决策事项" not in page.text  # village procedures are not started at a township
    started = staff.post("/start", data={"org": "SFZ", "procedure": "T-SUP-01", "title": "来信反映村道工程",
                                         "csrf_token": staff.csrf})
    assert started.status_code == 302
    case = xw.show_case(int(started.location.rsplit("/", 1)[1]))
    assert case["procedure_id"] == "T-SUP-01" and case["history"][0]["actor"] == people["township_discipline"]
    cadre = login(app, people["party_branch"])
    assert cadre.get("/start?org=SFZ").status_code == 403
    assert 'value="SFZ"' not in cadre.get("/start").text
