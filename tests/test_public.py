"""The public side through Flask's test client on the real test database: the village board, a
case's progress page by tracking code (QR), objections during a notice period, 码上举报, the money
and subsidy lists, rate limiting and spam checks."""

from __future__ import annotations

import re

import pytest

from engine.core import cases as engine_cases
from engine.core.errors import InvalidData
from engine.services.scenarios import walk
from conftest import case_context
from engine.services.scenarios import plan_step_data, sample_evidence
from web_helpers import login, make_app, token_of

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture
def web(xw):
    app = make_app(xw)
    app.config["PUBLIC_MIN_FILL_SECONDS"] = 0
    return app


@pytest.fixture
def on_notice(xw, people):
    """A B-PUR-02 purchase at 东岙村 whose result is on notice (the notice timer waits)."""
    case = xw.start_case("B-PUR-02", "DONGAO", people["handler"], {"title": "村委会办公用品采购"})
    walk(xw, case, people, stop_at="disclose_result_objections")
    assert xw.show_case(case)["timers"], "the notice period should be running"
    return case


def drive(xw, case_id: int, users: dict, overrides: dict | None = None, *, frozen=None, stop_at: str | None = None):
    """Walk a case with planned data, ``overrides`` put into the steps that have those fields."""
    for _ in range(80):
        info = xw.show_case(case_id)
        if info["status"] != "running":
            return
        if not info["current_steps"]:
            if not info["timers"] or frozen is None:
                return
            frozen.advance(days=40)
            xw.tick()
            continue
        step_id = info["current_steps"][0]["step_id"]
        if step_id == stop_at:
            return
        d, params, data = case_context(xw, case_id)
        step = d.steps[step_id]
        own = {k: v for k, v in (overrides or {}).items() if any(f.name == k for f in step.fields)}
        payload = plan_step_data(d, step_id, params, data, overrides=own)
        payload.update(own)
        kwargs = {}
        user = users.get(step.role or "")
        if user is None and step.proxy:
            user = users["committee"]
            kwargs = {"on_behalf_of": "代办对象", "proxy_reason": "行动不便"}
        if step.evidence_required:
            kwargs["attachments"] = sample_evidence(xw, step, user)
        xw.complete(case_id, step_id, user, payload, **kwargs)


def code_of(xw, case_id: int) -> str:
    return xw.show_case(case_id)["tracking_code"]


def form_post(client, url: str, data: dict, **kw):
    page = client.get(url)
    assert page.status_code == 200, page.text[:500]
    stamp = re.search(r'name="stamp" value="([^"]+)"', page.text).group(1)
    return client.post(url, data={"csrf_token": token_of(page.text), "stamp": stamp, **data}, **kw)


def test_board_shows_what_is_on_notice(web, xw, on_notice):
    client = web.test_client()
    r = client.get("/public/DONGAO")
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "public, max-age=60"
    assert "script" not in r.text.lower()
    assert "村委会办公用品采购" in r.text and "还剩 7 天" in r.text
    code = code_of(xw, on_notice)
    assert f"/public/case/{code}/objection" in r.text
    assert "村级重大决策事项(五议两公开)" in r.text  # the handbook online
    assert "/public/DONGAO/procedures/V-DEC-01" in r.text
    assert "码上举报" in r.text and "我们的钱包" in r.text and "补贴去哪了" in r.text
    chart = client.get("/public/DONGAO/procedures/V-DEC-01")
    assert chart.status_code == 200 and "<svg" in chart.text
    assert client.get("/public/DONGAO/procedures/C-DEC-01").status_code == 404  # a community procedure
    assert client.get("/public/HEPING").status_code == 200
    assert client.get("/public/NOWHERE").status_code == 404
    for town in ("/public/SFZ", "/public/SFQ"):  # a township's (a district's) page lists its boards
        page = client.get(town)
        assert page.status_code == 200 and 'href="/public/DONGAO"' in page.text


def test_board_lists_cadres_by_display_name_only(web, xw, people):
    r = web.test_client().get("/public/DONGAO")
    assert "村(居)务监督委员会" in r.text
    assert people["party_branch"] not in r.text  # user names are login names: never public


def test_case_page_by_tracking_code(web, xw, on_notice):
    client = web.test_client()
    code = code_of(xw, on_notice)
    r = client.get(f"/public/case/{code}")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "public, max-age=60"
    assert "采购结果公开" in r.text and "还剩 7 天" in r.text
    assert r.text.count("<svg") == 2  # flowchart and QR code
    assert "node-" in r.text
    info = xw.show_case(on_notice)
    with xw.db.read() as s:
        from storage.models import Case

        row = s.get(Case, on_notice)
        head, seq = row.audit_head, row.audit_seq
    assert head in r.text and f"共 {seq} 条记录" in r.text
    # Lower case and without dashes still finds it; the JSON has the same public view.
    assert client.get(f"/public/case/{code.replace('-', '').lower()}").status_code == 200
    data = client.get(f"/public/case/{code}/data.json").json
    assert data["tracking_code"] == code and data["audit"] == {"head": head, "events": seq}
    assert data["notices"][0]["days_left"] == 7
    receipt = client.get(f"/public/case/{code}/receipt")
    assert receipt.status_code == 200 and "<svg" in receipt.text
    assert f"http://localhost/public/case/{code}" in receipt.text
    assert info["status"] == "running"


def test_unknown_codes_are_plainly_not_found(web, xw, on_notice):
    client = web.test_client()
    real = code_of(xw, on_notice)
    altered = real[:-1] + ("Y" if real[-1] != "Y" else "Z")
    for code in ("AAAA-BBBB-CCCC", "x", "'; drop table", altered):
        r = client.get(f"/public/case/{code}")
        assert r.status_code == 404
    codes = {engine_cases.new_tracking_code() for _ in range(2000)}
    assert len(codes) == 2000 and all(len(c) == 12 for c in codes)


def test_staff_header_prints_the_qr_code(web, xw, people, on_notice):
    client = login(web, people["handler"])
    r = client.get(f"/cases/{on_notice}")
    code = code_of(xw, on_notice)
    assert r.status_code == 200 and f"/public/case/{code}" in r.text and f"/public/case/{code}/receipt" in r.text
    assert 'class="case-qr"' in r.text


def test_objection_during_notice_reaches_the_objections_task(web, xw, people, frozen, on_notice):
    client = web.test_client()
    code = code_of(xw, on_notice)
    r = form_post(client, f"/public/case/{code}/objection",
                  {"text": "供应商是村干部亲属,价格偏高", "name": "李四", "phone": "13900001111"})
    assert r.status_code == 200 and "异议已提交" in r.text
    filed = [e for e in xw.show_case(on_notice)["history"] if e["type"] == "objection_filed"]
    assert len(filed) == 1 and filed[0]["actor"] == "public"
    # The text is in the hashed trail; the name and phone are not (a salted commitment is).
    assert filed[0]["data"]["text"] == "供应商是村干部亲属,价格偏高"
    assert "phone" not in filed[0]["data"] and "name" not in filed[0]["data"]
    assert len(filed[0]["data"]["identity"]["commitment"]) == 64
    assert all(rep.ok for rep in xw.verify(on_notice))
    # In public: counted, never its text, name or phone.
    page = client.get(f"/public/case/{code}").text
    assert "收到公示异议1件" in page
    for secret in ("价格偏高", "李四", "13900001111"):
        assert secret not in page and secret not in client.get("/public/DONGAO").text
    assert "已收到异议 1 件" in client.get("/public/DONGAO").text

    # The notice period ends: the objections task opens with the objection shown and counted.
    frozen.advance(days=8)
    xw.tick()
    task = xw.tasks(on_notice)[0]
    assert task["step_id"] == "disclose_result_objections"
    responsible = people[task["role"]]
    staff = login(web, responsible)
    shown = staff.get(f"/cases/{on_notice}").text
    assert "价格偏高" in shown and "13900001111" in shown and 'value="1"' in shown
    with pytest.raises(InvalidData):
        xw.complete(on_notice, "disclose_result_objections", responsible,
                    {"objection_count": 0, "objection_upheld": False, "objection_reply": "无异议"})
    xw.complete(on_notice, "disclose_result_objections", responsible,
                {"objection_upheld": False, "objection_reply": "经核实供应商与村干部无亲属关系,报价为三家最低"})
    history = xw.show_case(on_notice)["history"]
    done = [e for e in history if e["type"] == "step_completed"][-1]
    assert done["data"]["data"]["objection_count"] == 1
    page = client.get(f"/public/case/{code}").text
    assert "经核实供应商与村干部无亲属关系" in page

    # After the notice period no objection is taken.
    late = client.get(f"/public/case/{code}/objection")
    assert "不在公示期内" in late.text and 'name="text"' not in late.text
    with pytest.raises(Exception) as exc:
        xw.file_objection(code, "补充一条异议内容")
    assert "不在公示期" in str(exc.value)


def test_objection_needs_csrf_and_rejects_bots_without_losing_text(web, xw, on_notice):
    client = web.test_client()
    code = code_of(xw, on_notice)
    url = f"/public/case/{code}/objection"
    assert client.post(url, data={"text": "没有令牌的异议"}).status_code == 400
    r = form_post(client, url, {"text": "蜜罐里的异议内容", "website": "http://spam"})
    assert r.status_code == 422 and "蜜罐里的异议内容" in r.text
    web.config["PUBLIC_MIN_FILL_SECONDS"] = 60
    r = form_post(client, url, {"text": "太快提交的异议内容"})
    assert r.status_code == 422 and "提交过快" in r.text and "太快提交的异议内容" in r.text
    web.config["PUBLIC_MIN_FILL_SECONDS"] = 0
    r = form_post(client, url, {"text": "短"})
    assert r.status_code == 422 and "至少5个字" in r.text
    r = form_post(client, url, {"text": "电话格式不对的异议", "phone": "12345"})
    assert r.status_code == 422 and "电话格式不对的异议" in r.text
    assert not [e for e in xw.show_case(on_notice)["history"] if e["type"] == "objection_filed"]


def test_rate_limit_says_so_in_chinese_and_keeps_the_text(web, xw, on_notice):
    web.config["PUBLIC_RATE_LIMITS"] = {"objection": 2, "report": 1}
    client = web.test_client()
    url = f"/public/case/{code_of(xw, on_notice)}/objection"
    for i in range(2):
        assert form_post(client, url, {"text": f"第{i + 1}条正常异议内容"}).status_code == 200
    r = form_post(client, url, {"text": "第三条异议内容被限流"})
    assert r.status_code == 429 and "提交太频繁" in r.text and "第三条异议内容被限流" in r.text
    # Another address is not limited.
    other = web.test_client()
    r = form_post(other, url, {"text": "另一位村民的异议内容"}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert r.status_code == 200
    with xw.db.read() as s:
        from storage.models import PublicSubmission

        rows = s.query(PublicSubmission).all()
    assert len(rows) == 3 and all(len(r.bucket) == 64 and "127.0.0.1" not in r.bucket for r in rows)


def test_behind_a_trusted_proxy_villagers_are_told_apart_by_forwarded_address(xw, on_notice):
    """With XIAOWEI_TRUSTED_PROXIES set, the rate limit counts each villager (X-Forwarded-For), not
    the proxy; without it the header is ignored, so a client cannot dodge the limit by forging it."""
    from webui import create_app

    url = f"/public/case/{code_of(xw, on_notice)}/objection"
    for proxies, expected in ((1, 200), (0, 429)):
        app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "TRUSTED_PROXIES": proxies,
                          "PUBLIC_MIN_FILL_SECONDS": 0, "PUBLIC_RATE_LIMITS": {"objection": 1}}, db=xw.db)
        with xw.db.write() as s:
            from storage.models import PublicSubmission

            s.query(PublicSubmission).delete()
        proxy = {"REMOTE_ADDR": "10.0.0.1"}
        first = form_post(app.test_client(), url, {"text": "第一位村民的异议内容"}, environ_base=proxy,
                          headers={"X-Forwarded-For": "203.0.113.5"})
        assert first.status_code == 200
        second = form_post(app.test_client(), url, {"text": "第二位村民的异议内容"}, environ_base=proxy,
                           headers={"X-Forwarded-For": "203.0.113.6"})
        assert second.status_code == expected, proxies


def test_report_starts_a_township_case_and_gives_a_tracking_code(web, xw, people):
    client = web.test_client()
    text = "村会计王五在2026年2月发放补贴时克扣每户50元"
    r = form_post(client, "/public/DONGAO/report",
                  {"text": text, "topic": "welfare", "name": "赵六", "phone": "13700002222",
                   "photos": [(__import__("io").BytesIO(PNG), "现场.png")]}, content_type="multipart/form-data")
    assert r.status_code == 200, r.text[:2000]
    code = re.search(r'id="tracking-code">([A-Z0-9-]+)<', r.text).group(1)
    with xw.db.read() as s:
        from storage.models import Case, Organization

        case = s.query(Case).filter_by(tracking_code=code.replace("-", "")).one()
        assert case.procedure_id == "T-SUP-01" and s.get(Organization, case.org_id).code == "SFZ"
        assert case.started_by == "public"
        case_id = case.id
    started = xw.show_case(case_id)["history"][0]
    intake = started["data"]["public"]
    # The reporter's name and phone are sealed out of the hashed trail (a salted commitment stays).
    assert "reporter" not in intake and len(intake["identity"]["commitment"]) == 64
    assert intake["attachments"][0]["type"] == "image/png"
    assert "赵六" not in xw.export_trail(case_id) and "13700002222" not in xw.export_trail(case_id)
    # The reporter follows it by its code; nothing private shows.
    page = client.get(f"/public/case/{code}").text
    assert "受理登记" in page and "镇(街道)纪(工)委" in page
    for secret in (text, "赵六", "13700002222", "现场.png"):
        assert secret not in page
    tracked = client.get(f"/public/track?code={code.lower()}")
    assert tracked.status_code == 302 and tracked.location.endswith(f"/public/case/{code}")
    # The discipline office sees the text, the reporter and the photo.
    staff = login(web, people["township_discipline"])
    shown = staff.get(f"/cases/{case_id}").text
    assert text in shown and "赵六" in shown and "13700002222" in shown
    sha = started["data"]["public"]["attachments"][0]["sha256"]
    photo = staff.get(f"/cases/{case_id}/files/{sha}")
    assert photo.status_code == 200 and photo.data == PNG
    # ... and handles it: 受理 → 核实 → 处理 → 反馈; the public feedback appears on the page.
    user = people["township_discipline"]
    xw.complete(case_id, "receive", user, {"accepted": True, "accept_note": "已受理,转入核实"})
    xw.complete(case_id, "verify", user, {"findings": "查阅发放台账,确有克扣", "conclusion": "confirmed"})
    xw.complete(case_id, "handle", user, {"measures": "责令退还并给予诫勉", "rectified": True})
    xw.complete(case_id, "feedback", user, {"feedback_date": "2026-03-02", "feedback_text": "问题属实,已责令退还并处理"})
    page = client.get(f"/public/case/{code}").text
    assert "问题属实,已责令退还并处理" in page and "已办结" in page
    assert "查阅发放台账" not in page and "诫勉" not in page


def test_report_anonymous_and_file_checks(web, xw):
    client = web.test_client()
    r = form_post(client, "/public/DONGAO/report",
                  {"text": "匿名反映:村里工程款去向不明需要核查", "topic": "project",
                   "photos": [(__import__("io").BytesIO(b"<html><script>x</script>"), "photo.jpg")]},
                  content_type="multipart/form-data")
    assert r.status_code == 422 and "匿名反映:村里工程款去向不明需要核查" in r.text
    r = form_post(client, "/public/DONGAO/report", {"text": "匿名反映:村里工程款去向不明需要核查", "topic": "project"})
    assert r.status_code == 200
    with xw.db.read() as s:
        from storage.models import Case

        case = s.query(Case).filter_by(procedure_id="T-SUP-01").one()
    # Anonymous reports are sealed too (an empty identity under its own salt): the trail cannot tell.
    assert set(xw.show_case(case.id)["history"][0]["data"]["public"]) == {"channel", "about", "attachments",
                                                                         "identity"}
    assert client.get("/public/SFZ/report").status_code == 404


def test_money_and_subsidies_mask_people(web, xw, people, frozen):
    pay = xw.start_case("B-FIN-01", "DONGAO", people["handler"], {"title": "村道路灯电费"})
    drive(xw, pay, people, {"amount": "1234.50", "payee": "国网示范供电所"}, frozen=frozen)
    dibao = xw.start_case("B-SVC-01", "DONGAO", people["committee"], {"title": "低保申请"})
    drive(xw, dibao, people, {"recipient_name": "张三明", "applicant_name": "张三明",
                              "id_number": "11010519491231002X", "confirmed_amount": "820"}, frozen=frozen)
    client = web.test_client()
    money = client.get("/public/DONGAO/money").text
    assert "1,234.50" in money and "国网示范供电所" in money and "村道路灯电费" in money
    assert "审批:" in money and "支出合计" in money
    subsidies = client.get("/public/DONGAO/subsidies").text
    assert "张三明" not in subsidies and "11010519491231002X" not in subsidies
    assert "820.00" in subsidies and "张*明" in subsidies and "1101**********002X" in subsidies


def test_a_notice_period_that_ran_out_is_over_before_tick(web, xw, frozen, on_notice):
    """Past the notice's end the board no longer lists it and objections are refused, even while the
    timer still waits for the next `tick`."""
    frozen.advance(days=8)  # B-PUR-02's result notice lasts 7 days
    from sqlalchemy import func, select

    from storage.models import TimerDue

    with xw.db.read() as s:
        waiting = s.scalar(select(func.count()).select_from(TimerDue).where(TimerDue.case_id == on_notice))
    assert waiting == 1, "tick has not run: the timer still waits"
    board = web.test_client().get("/public/DONGAO").text
    assert "村委会办公用品采购" not in board.split("往期公示")[0]
    from engine.core.errors import Conflict

    with pytest.raises(Conflict):
        xw.file_objection(code_of(xw, on_notice), "公示期满后才提的异议")


def test_money_pages_keep_totals_over_every_record(web, xw, people, frozen, monkeypatch):
    from engine.services import public_reads

    monkeypatch.setattr(public_reads, "PER_PAGE", 2)
    for title, amount in (("一号电费", "100.00"), ("二号电费", "200.00"), ("三号电费", "400.00")):
        case_id = xw.start_case("B-FIN-01", "DONGAO", people["handler"], {"title": title})
        drive(xw, case_id, people, {"amount": amount, "payee": "国网示范供电所"}, frozen=frozen)
        frozen.advance(days=1)
    client = web.test_client()
    first, second = client.get("/public/DONGAO/money").text, client.get("/public/DONGAO/money?page=2").text
    for page in (first, second):
        assert "700.00" in page  # the total covers all three, whichever page is shown
        assert "共 3 笔" in page
    assert "三号电费" in first and "二号电费" in first and "一号电费" not in first  # newest first
    assert "一号电费" in second and "三号电费" not in second
    assert 'rel="next"' in first and 'rel="prev"' in second
    for bad in ("0", "-1", "x", "99999999", "3"):  # clamped to a real page, never an error
        r = client.get(f"/public/DONGAO/money?page={bad}")
        assert r.status_code == 200 and "700.00" in r.text
