"""Warnings that say one thing once (issue #14): the split-purchase rule merges its item and supplier
views (the same three purchases give one warning, not two); WR-04 also flags an implementation dated
inside the resolution's notice (inside: flagged, after: not); a village with an open red warning is
never graded A; the public money pages tell 拟发放 (proposed, on notice) from 已发放 (paid)."""

from __future__ import annotations

from datetime import date

import pytest

from conftest import case_context, ready_steps
from engine.services.scenarios import plan_step_data, sample_evidence


def step(xw, case_id, step_id, users, overrides=None, as_user=None):
    d, params, data = case_context(xw, case_id)
    payload = plan_step_data(d, step_id, params, data, overrides=overrides)
    payload.update(overrides or {})
    user = as_user or users[d.steps[step_id].role]
    kwargs = {}
    if d.steps[step_id].evidence_required:
        kwargs["attachments"] = sample_evidence(xw, d.steps[step_id], user)
    return xw.complete(case_id, step_id, user, payload, **kwargs)


def walk(xw, frozen, case_id, users, until, data=None):
    """Complete the ready steps straight on (``data``: overrides by step) until ``until`` is ready,
    moving the clock a day and ticking when the case waits on a notice period."""
    data = data or {}
    for _ in range(60):
        ready = ready_steps(xw, case_id)
        if until in ready:
            return
        if not ready:
            frozen.advance(days=1)
            xw.tick()
            continue
        step(xw, case_id, ready[0], users, data.get(ready[0]))
    raise AssertionError(f"{until} never became ready")


def at_day(frozen, day: str) -> None:
    frozen.set(f"{day}T01:00:00+00:00")  # 09:00 Beijing time


def raised(xw, rule):
    return xw.list_warnings(rule=rule, limit=500)["warnings"]


# --- WR-01: one warning per set of purchases ----------------------------------------------------------
def purchase(xw, frozen, users, supplier, amount, day, item):
    at_day(frozen, day)
    cid = xw.start_case("B-PUR-02", "DONGAO", users["handler"])
    walk(xw, frozen, cid, users, "reimburse", {
        "request": {"item_name": item, "budget_amount": amount, "cumulative_amount": amount},
        "decide_supplier": {"supplier": supplier, "contract_amount": amount, "decision_date": day},
    })
    return cid


def test_the_same_three_purchases_give_one_split_warning_not_two(xw, people, frozen):
    ids = [purchase(xw, frozen, people, "永兴五金店", amount, day, "办公用品")
           for amount, day in ((20000, "2026-03-02"), (20000, "2026-03-09"), (15000, "2026-03-16"))]
    found = raised(xw, "WR-01")
    assert len(found) == 1, [w["summary"] for w in found]
    w = found[0]
    assert w["facts"]["cases"] == ids and w["facts"]["total"] == "55000.00"
    assert w["facts"]["views"] == [{"by": "supplier", "value": "永兴五金店"}, {"by": "item", "value": "办公用品"}]
    assert w["summary"].startswith("同一供应商“永兴五金店”、同一品目“办公用品”30天内3笔采购")
    xw.scan_warnings()
    assert len(raised(xw, "WR-01")) == 1  # a full scan agrees


def test_windows_sharing_a_purchase_are_one_warning_and_separate_ones_two(xw, people, frozen):
    # supplier view: a, b, c (永兴); item view: c, d, e (水泥) — c is in both: one set of facts
    a = purchase(xw, frozen, people, "永兴五金店", 20000, "2026-03-02", "钢筋")
    b = purchase(xw, frozen, people, "永兴五金店", 20000, "2026-03-03", "砂石")
    c = purchase(xw, frozen, people, "永兴五金店", 15000, "2026-03-04", "水泥")
    d = purchase(xw, frozen, people, "宏达建材", 20000, "2026-03-05", "水泥")
    e = purchase(xw, frozen, people, "新华建材", 20000, "2026-03-06", "水泥")
    xw.scan_warnings()
    (w,) = raised(xw, "WR-01")  # raised with c; d and e joined the same facts: no second warning
    assert w["facts"]["cases"] == [a, b, c]
    with xw.db.write() as s:  # a scan of the whole history at once sees one set of five purchases
        from storage.models import SupervisionWarning, WarningSubject

        s.query(WarningSubject).delete()
        s.query(SupervisionWarning).delete()
    xw.scan_warnings()
    (w,) = raised(xw, "WR-01")
    assert w["facts"]["cases"] == [a, b, c, d, e]
    assert [v["by"] for v in w["facts"]["views"]] == ["supplier", "item"]
    # three more purchases from another supplier and of other items, weeks later: a second set of facts
    f = purchase(xw, frozen, people, "东风商店", 20000, "2026-05-04", "电脑")
    g = purchase(xw, frozen, people, "东风商店", 20000, "2026-05-05", "打印机")
    h = purchase(xw, frozen, people, "东风商店", 20000, "2026-05-06", "投影仪")
    found = raised(xw, "WR-01")
    assert sorted(tuple(w["facts"]["cases"]) for w in found) == [(a, b, c, d, e), (f, g, h)]


# --- WR-04: implementation inside the resolution's notice -------------------------------------------
def _notice_window(xw, case_id):
    from engine.services.supervision.registry import ScanContext
    from engine.services.supervision.rules import decisions

    with xw.db.read() as s:
        ctx = ScanContext(s, case_ids={case_id})
        for *_, data, _org, _proc, _v in ctx.events(["step_completed"], like='%"notice_start"%'):
            if data.get("step") == "disclose_resolution":
                start = date.fromisoformat(data["data"]["notice_start"])
                (timer,) = [t for t in data["timers"] if t["node"] == "disclose_resolution_period"]
                from datetime import datetime

                end = (datetime.strptime(timer["due_at"], "%Y-%m-%dT%H:%M:%S.%fZ") + decisions.LOCAL).date()
                return start, end
    raise AssertionError("no notice")


@pytest.mark.parametrize("where", ["inside", "last_day", "end", "after"])
def test_implementation_inside_the_resolutions_notice(xw, people, frozen, monkeypatch, where):
    from datetime import timedelta

    at_day(frozen, "2026-03-02")
    cid = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    walk(xw, frozen, cid, people, "implement")
    start, end = _notice_window(xw, cid)
    day = {"inside": start + timedelta(days=1), "last_day": end - timedelta(days=1), "end": end,
           "after": end + timedelta(days=1)}[where]
    from engine.core import clerk

    if day > frozen.now().date():
        at_day(frozen, day.isoformat())
    monkeypatch.setattr(clerk, "check", lambda *a, **k: {})  # the engine before the clerk refused such dates
    step(xw, cid, "implement", people, {"completion_date": day.isoformat()})
    monkeypatch.undo()
    found = [w for w in raised(xw, "WR-04") if w["case_id"] == cid]
    if where in ("inside", "last_day"):
        (w,) = found
        assert w["severity"] == "red" and w["facts"]["notice_end"] == end.isoformat()
        assert w["facts"]["later"] == day.isoformat() and "公示期内" in w["summary"]
        assert "completion_date" not in w["summary"]
    else:
        assert found == []
    xw.scan_warnings()
    assert len([w for w in raised(xw, "WR-04") if w["case_id"] == cid]) == len(found)


# --- grades: never A with an open red warning -------------------------------------------------------
def test_a_village_with_an_open_red_warning_is_not_graded_a(xw, people, frozen):
    from supervision_helpers import red_expense

    graded = {g["org"]: g for g in xw.grade_villages("2026-03")["grades"]}
    assert graded["DONGAO"]["grade"] == "A" and graded["DONGAO"]["capped"] == ""
    red_expense(xw, people)  # one open red warning: 90 points, the A line
    graded = {g["org"]: g for g in xw.grade_villages("2026-03")["grades"]}
    assert graded["DONGAO"]["score"] == 90.0 and graded["DONGAO"]["grade"] == "B"
    assert graded["DONGAO"]["capped"] == "有1条未办结的红色预警,不评A级"
    # even with red warnings weighed at nothing, the grade is not A while one is open
    from test_warnings import set_param

    set_param(xw, "SFZ", "grade_weight_red", "0")
    graded = {g["org"]: g for g in xw.grade_villages("2026-03")["grades"]}
    assert graded["DONGAO"]["score"] == 100.0 and graded["DONGAO"]["grade"] == "B"
    # resolved within the month: A again
    (red,) = xw.list_warnings(rule="WR-03")["warnings"]
    xw.handle_warning(red["id"], "resolve", people["supervision_committee"], "已整改")
    graded = {g["org"]: g for g in xw.grade_villages("2026-03")["grades"]}
    assert graded["DONGAO"]["grade"] == "A" and graded["DONGAO"]["capped"] == ""
    assert graded["NANXI"]["grade"] == "A"


def drive(xw, case_id, users, overrides=None, *, frozen, stop_at=None):
    """Walk a case with planned data (and evidence where the step asks for it), ``overrides`` put into
    the steps that have those fields, moving the clock past notice periods; stop when ``stop_at`` is ready."""
    for _ in range(80):
        info = xw.show_case(case_id)
        if info["status"] != "running":
            return
        if not info["current_steps"]:
            frozen.advance(days=40)
            xw.tick()
            continue
        step_id = info["current_steps"][0]["step_id"]
        if step_id == stop_at:
            return
        d = case_context(xw, case_id)[0]
        own = {k: v for k, v in (overrides or {}).items() if any(f.name == k for f in d.steps[step_id].fields)}
        user = users.get(d.steps[step_id].role or "")
        if user is None and d.steps[step_id].proxy:
            user = users["committee"]
        step(xw, case_id, step_id, users, own, as_user=user)
    raise AssertionError("the case never ended")


# --- 补贴去哪了 / 我们的钱包: 拟发放 (proposed, on notice) vs 已发放 (paid, with the confirming step) ---------
def test_an_allowance_on_notice_is_proposed_and_paid_only_once_confirmed(xw, people, frozen, app):
    dibao = xw.start_case("B-SVC-01", "DONGAO", people["committee"], {"title": "低保申请"})
    drive(xw, dibao, people, {"recipient_name": "张三明", "applicant_name": "张三明", "id_number": "11010519491231002X",
                              "proposed_amount": "820", "confirmed_amount": "820"}, frozen=frozen,
          stop_at="county_confirm")
    assert xw.show_case(dibao)["current_steps"][0]["step_id"] == "county_confirm"
    client = app.test_client()
    page = client.get("/public/DONGAO/subsidies").text
    assert "拟发放" in page and "尚未发放(公示或审核中)" in page
    totals = page.split('<dl class="totals">')[1].split("</dl>")[0]
    assert "已发放合计" in totals and "0.00 元" in totals and "820.00 元" in totals.split("拟发放合计")[1]
    assert "县级民政部门审核确认" not in page
    drive(xw, dibao, people, {"confirmed_amount": "820"}, frozen=frozen)
    page = client.get("/public/DONGAO/subsidies").text
    totals = page.split('<dl class="totals">')[1].split("</dl>")[0]
    assert "拟发放合计" not in totals and "820.00 元" in totals
    assert "已发放" in page and "尚未发放" not in page
    assert "县级民政部门审核确认" in page  # the confirming step, with its date


def test_spending_not_yet_paid_is_proposed_on_our_wallet(xw, people, frozen, app):
    pay = xw.start_case("B-FIN-01", "DONGAO", people["handler"], {"title": "村道路灯电费"})
    drive(xw, pay, people, {"amount": "1234.50", "payee": "国网示范供电所"}, frozen=frozen, stop_at="center_entry")
    client = app.test_client()
    page = client.get("/public/DONGAO/money").text
    assert "拟支出" in page and "尚未支付" in page and "1,234.50" in page.split("拟支出合计")[1]
    drive(xw, pay, people, {}, frozen=frozen)
    page = client.get("/public/DONGAO/money").text
    assert "拟支出合计" not in page and "已支付" in page and "三资代理中心审核入账" in page
    english = client.get("/public/DONGAO/money", headers={"Accept-Language": "en"}).text
    assert "拟支出" not in english
