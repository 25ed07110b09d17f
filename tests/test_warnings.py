"""Supervision warnings: every rule fires on a history built through the engine, and stays silent on
the near miss (2 purchases not 3, day 31 not day 30, a relative outside the declared degree …)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from conftest import case_context, live_until, ready_steps
from engine.services.scenarios import plan_step_data, sample_evidence
from engine.services.supervision import warnings
from engine.core.errors import Conflict, Forbidden, InvalidData


def do_step(xw, case_id, step_id, users, *, take=None, overrides=None, as_user=None, **kwargs):
    """Complete a step with planned valid data, then exactly the ``overrides`` (the planner would
    otherwise steer values away from exception exits; the history should say what we say)."""
    d, params, data = case_context(xw, case_id)
    payload = plan_step_data(d, step_id, params, data, take=take, overrides=overrides)
    payload.update(overrides or {})
    live_until(payload)
    user = as_user or users[d.steps[step_id].role]
    if d.steps[step_id].evidence_required and "attachments" not in kwargs:
        kwargs["attachments"] = sample_evidence(xw, d.steps[step_id], user)
    return xw.complete(case_id, step_id, user, payload, **kwargs)


def run(xw, case_id, users, until=None, data=None, take=None, as_user=None, max_steps=40):
    """Complete ready steps straight on (``data``: overrides by step, ``take``: exits by step) until
    ``until`` is ready (or the case closes). Returns the ready steps."""
    data, take = data or {}, take or {}
    for _ in range(max_steps):
        ready = ready_steps(xw, case_id)
        if not ready or (until and until in ready):
            return ready
        step = ready[0]
        do_step(xw, case_id, step, users, overrides=data.get(step), take=take.get(step),
                as_user=(as_user or {}).get(step))
    raise AssertionError(f"{until} never became ready")


def raised(xw, rule=None, case_id=None, status=None):
    found = xw.list_warnings(rule=rule, case_id=case_id, status=status, limit=500)["warnings"]
    return found


def purchase(xw, users, supplier, amount, day, item="办公用品"):
    """A B-PUR-02 small purchase at 东岙村 decided on ``day`` (ISO date)."""
    cid = xw.start_case("B-PUR-02", "DONGAO", users["handler"])
    run(xw, cid, users, until="reimburse", data={
        "request": {"item_name": item, "budget_amount": amount, "cumulative_amount": amount},
        "decide_supplier": {"supplier": supplier, "contract_amount": amount, "decision_date": day},
    })
    return cid


# --- WR-01 split purchases -----------------------------------------------------------------------
def test_split_purchase_three_within_30_days_fires(xw, people):
    a = purchase(xw, people, "永兴五金店", 20000, "2026-03-02", item="水泥")
    b = purchase(xw, people, "永兴五金店", 20000, "2026-03-15", item="钢筋")
    assert not raised(xw, "WR-01")
    c = purchase(xw, people, "永兴五金店", 15000, "2026-04-01", item="砂石")  # day 30 after the first
    found = raised(xw, "WR-01")
    assert len(found) == 1
    w = found[0]
    assert w["severity"] == "red" and w["case_id"] == c
    assert w["facts"]["cases"] == [a, b, c] and w["facts"]["total"] == "55000.00"
    # the same facts never raise twice: a full scan finds nothing new
    assert not [r for r in xw.scan_warnings() if r["rule"] == "WR-01"]


def test_split_purchase_near_misses_stay_silent(xw, people):
    purchase(xw, people, "永兴五金店", 20000, "2026-03-02", item="水泥")
    purchase(xw, people, "永兴五金店", 20000, "2026-03-15", item="钢筋")
    purchase(xw, people, "其他商店", 30000, "2026-03-20", item="电脑")   # another supplier
    purchase(xw, people, "永兴五金店", 15000, "2026-04-02", item="砂石")  # day 31: outside the window
    assert not raised(xw, "WR-01")
    xw.scan_warnings()
    assert not raised(xw, "WR-01")


def test_split_purchase_threshold_is_a_local_parameter(xw, people):
    from engine.core import directory, procedures

    purchase(xw, people, "永兴五金店", 4000, "2026-03-02", item="水泥")
    purchase(xw, people, "永兴五金店", 4000, "2026-03-03", item="钢筋")
    purchase(xw, people, "永兴五金店", 4000, "2026-03-04", item="砂石")
    assert not raised(xw, "WR-01")  # 12,000 < 50,000
    with xw.db.write() as s:
        procedures.set_param(s, directory.get_org(s, "SFZ"), "platform_entry_threshold", "10000", actor="cli")
        procedures.set_param(s, directory.get_org(s, "DONGAO"), "split_purchase_count", "3", actor="cli")
    xw.scan_warnings()
    assert len(raised(xw, "WR-01")) == 1


def settle(xw, frozen, case_id, users, until=None, data=None, take=None, as_user=None, days=20):
    """Like :func:`run`, moving the clock past notice periods (``tick``) when the case waits on a timer."""
    for _ in range(12):
        ready = run(xw, case_id, users, until=until, data=data, take=take, as_user=as_user)
        if ready or xw.show_case(case_id)["status"] != "running":
            return ready
        frozen.advance(days=days)
        xw.tick()
    raise AssertionError("the case never got there")


def set_param(xw, org, key, value):
    from engine.core import directory, procedures

    with xw.db.write() as s:
        procedures.set_param(s, directory.get_org(s, org), key, value, actor="cli")


def expense(xw, users, *, payee="永兴五金店", amount=500, day="2026-03-02", category="office", org="DONGAO",
            until=None, data=None, as_user=None):
    cid = xw.start_case("B-FIN-01", org, users["handler"])
    submit = {"payee": payee, "amount": amount, "expense_date": day, "expense_category": category,
              "days_since_expense": 0}
    if until is None:
        do_step(xw, cid, "submit", users, overrides=submit)
    else:
        run(xw, cid, users, until=until, data={"submit": submit, **(data or {})}, as_user=as_user)
    return cid


# --- WR-02 split projects ---------------------------------------------------------------------
def project(xw, users, name, contractor, amount, day):
    cid = xw.start_case("B-PRJ-02", "DONGAO", users["committee"])
    run(xw, cid, users, until="result_publicity", data={
        "prepare": {"project_name": name, "control_price": amount},
        "decide_method": {"cumulative_amount": amount},
        "open_and_award": {"contractor": contractor, "contract_amount": amount, "open_date": day},
    })
    return cid


def test_split_project_similar_names_fire(xw, people):
    a = project(xw, people, "东岙村村道硬化一期", "甲建筑公司", 60000, "2026-03-02")
    b = project(xw, people, "东岙村村道硬化二期", "乙建筑公司", 60000, "2026-05-30")  # day 89
    found = raised(xw, "WR-02")
    assert len(found) == 1 and found[0]["facts"]["cases"] == [a, b]


def test_split_project_near_misses(xw, people):
    project(xw, people, "东岙村村道硬化一期", "甲建筑公司", 60000, "2026-03-02")
    project(xw, people, "文化礼堂屋顶维修", "丙建筑公司", 60000, "2026-03-05")    # not similar, other contractor
    project(xw, people, "东岙村村道硬化二期", "乙建筑公司", 60000, "2026-06-01")  # day 91
    assert not raised(xw, "WR-02")


# --- WR-03 above threshold without the platform -------------------------------------------------
def test_above_threshold_payment_without_platform(xw, people):
    fired = expense(xw, people, payee="宏达建筑有限公司", amount=60000, category="project")
    expense(xw, people, payee="宏达建筑有限公司", amount=49999, category="project")  # under the threshold
    expense(xw, people, payee="低保户代发", amount=60000, category="subsidy")           # not a purchase
    found = raised(xw, "WR-03")
    assert [w["case_id"] for w in found] == [fired]


# --- WR-04 execution before decision / XW-03 payment before acceptance ----------------------------
def test_payment_before_supplier_decision(xw, people):
    early = purchase(xw, people, "永兴五金店", 3000, "2026-03-05")
    do_step(xw, early, "reimburse", people, overrides={"paid_date": "2026-03-04"})
    same_day = purchase(xw, people, "永兴五金店", 3000, "2026-03-05")
    do_step(xw, same_day, "reimburse", people, overrides={"paid_date": "2026-03-05"})
    found = raised(xw, "WR-04")
    assert [w["case_id"] for w in found] == [early]
    assert found[0]["facts"]["days_early"] == 1


def test_payment_before_acceptance(xw, people):
    ids = []
    for paid in ("2026-03-04", "2026-03-05"):
        cid = xw.start_case("B-PUR-03", "DONGAO", people["acceptance_team"])
        run(xw, cid, people, until="issue", data={"acceptance": {"acceptance_date": "2026-03-05"},
                                                  "reimburse": {"paid_date": paid}})
        ids.append(cid)
    assert [w["case_id"] for w in raised(xw, "XW-03")] == [ids[0]]


# --- WR-05 disclosure too short / removed early -----------------------------------------------------
def test_disclosure_posted_late_is_too_short(xw, people):
    """A notice registered before it is posted would run short: the form refuses a start in the future
    (the period is counted from the registration, so it can only be as long as required); WR-05 stays
    silent on a notice registered the day it was posted. (The rule still reads histories recorded before
    the form checked dates.)"""
    on_time = purchase(xw, people, "永兴五金店", 3000, "2026-03-02")
    do_step(xw, on_time, "reimburse", people)
    do_step(xw, on_time, "disclose_result", people, overrides={"notice_start": "2026-03-02"})
    late = purchase(xw, people, "永兴五金店", 3000, "2026-03-02")
    do_step(xw, late, "reimburse", people)
    d, params, data = case_context(xw, late)
    payload = {**plan_step_data(d, "disclose_result", params, data), "notice_start": "2026-03-04"}
    with pytest.raises(InvalidData) as refused:
        xw.complete(late, "disclose_result", people[d.steps["disclose_result"].role], payload,
                    attachments=sample_evidence(xw, d.steps["disclose_result"], people["committee"]))
    assert "不能填写将来的日期" in refused.value.errors["notice_start"]
    assert "disclose_result" in ready_steps(xw, late)  # nothing recorded
    assert not raised(xw, "WR-05")


def test_affairs_disclosure_removed_early(xw, people, frozen):
    ids = {}
    for days in (14, 15):
        cid = xw.start_case("V-PUB-01", "DONGAO", people["assets_center"])
        posted = (frozen.now() + timedelta(hours=8)).date()
        settle(xw, frozen, cid, people, until="archive", data={"publish": {"notice_start": posted.isoformat()}})
        withdraw = (posted + timedelta(days=days)).isoformat()  # told as it was, even when early
        do_step(xw, cid, "archive", people, overrides={"withdraw_date": withdraw})
        ids[days] = cid
    assert [w["case_id"] for w in raised(xw, "WR-05")] == [ids[14]]


# --- WR-07 quorum short of the statutory rule ------------------------------------------------------
def test_vote_passed_only_because_of_a_lowered_local_quorum(xw, people, monkeypatch):
    """A township can no longer lower a lawful quorum (refused, engine.voting), and a lowered setting
    made earlier does not apply to new cases; a case started under one (before the rule was enforced)
    carries it in its parameters, and WR-07 still finds a vote that passed only because of it."""
    from engine.core import audit, procedures
    from engine.core.directory import get_org
    from engine.core.errors import InvalidData
    from storage.models import ParameterSetting

    with pytest.raises(InvalidData):
        set_param(xw, "DONGAO", "vrep_quorum", "1/2")
    with xw.db.write() as s:
        s.add(ParameterSetting(org_id=get_org(s, "DONGAO").id, key="vrep_quorum", value="1/2",
                               updated_at=audit.db_time(), updated_by="legacy"))
    monkeypatch.setattr(procedures, "_keep_votes_lawful", lambda definition, values: None)  # the old engine
    vote = {"members_total": 30, "in_favour": 12, "against": 3, "abstain": 3}
    short = expense(xw, people, amount=20000, until="secretary_sign",
                    data={"resolve": {**vote, "present": 18}})
    enough = expense(xw, people, amount=20000, until="secretary_sign",
                     data={"resolve": {**vote, "present": 20, "abstain": 5}})  # exactly two thirds
    found = raised(xw, "WR-07")
    assert [w["case_id"] for w in found] == [short]
    assert enough not in [w["case_id"] for w in found]


# --- WR-08 / WR-09 / WR-22 kinship -------------------------------------------------------------
def declare(xw, cadre, person, relation, org="DONGAO"):
    with xw.db.write() as s:
        return warnings.add_kin(s, org, cadre, person, relation, actor="cli")


def test_related_party_payee_is_a_cadres_spouse(xw, people):
    declare(xw, people["director"], "李四海", "spouse")
    declare(xw, people["director"], "李五洋", "cousin")  # degree 3: outside close relatives
    fired = expense(xw, people, payee="李四海", amount=800)
    expense(xw, people, payee="李五洋", amount=800)
    found = raised(xw, "WR-08")
    assert [w["case_id"] for w in found] == [fired]
    assert people["director"] in xw.show_warning(found[0]["id"])["subjects"]
    # a wider degree set by the township brings the cousin in
    set_param(xw, "SFZ", "kin_max_degree", "3")
    xw.scan_warnings()
    assert len(raised(xw, "WR-08")) == 2


def test_welfare_applicant_related_to_a_cadre(xw, people):
    declare(xw, people["committee"], "王阿婆", "parent")
    ids = {}
    for filed in (False, True):
        cid = xw.start_case("B-SVC-02", "DONGAO", people["applicant"])
        do_step(xw, cid, "apply", people, overrides={"applicant_name": "王阿婆"})
        do_step(xw, cid, "verify", people, overrides={"cadre_kin": filed})
        ids[filed] = cid
    assert [w["case_id"] for w in raised(xw, "WR-09")] == [ids[False]]


def test_hiring_a_relative_without_recusal(xw, people, frozen):
    declare(xw, people["party_branch"], "陈小东", "child")
    ids = {}
    for recused in ("无", people["party_branch"]):
        cid = xw.start_case("V-HR-01", "DONGAO", people["joint_meeting"])
        settle(xw, frozen, cid, people, until="decide", data={
            "need": {"new_subsidy": False},
            "qualify": {"kin_applicants": recused != "无", "recused_members": recused},
            "exam": {"candidate_name": "陈小东"}})
        ids[recused] = cid
    assert [w["case_id"] for w in raised(xw, "WR-22")] == [ids["无"]]


# --- WR-11 / WR-12 / WR-23 / WR-24 payments ---------------------------------------------------------
def test_high_frequency_payee(xw, people):
    for day in ("2026-03-02", "2026-03-09", "2026-03-16", "2026-03-23"):
        expense(xw, people, payee="张记餐馆", amount=600, day=day)
    assert not raised(xw, "WR-11")  # four, not five
    last = expense(xw, people, payee="张记餐馆", amount=600, day="2026-04-01")  # day 30
    found = raised(xw, "WR-11")
    assert len(found) == 1 and found[0]["case_id"] == last and len(found[0]["facts"]["cases"]) == 5


def test_cash_payment_over_the_limit(xw, people):
    over = expense(xw, people, amount=1500, until="disclose", data={"center_entry": {"payment_method": "cash"}})
    expense(xw, people, amount=1000, until="disclose", data={"center_entry": {"payment_method": "cash"}})
    expense(xw, people, amount=1500, until="disclose", data={"center_entry": {"payment_method": "transfer"}})
    assert [w["case_id"] for w in raised(xw, "WR-12")] == [over]


def test_large_transfer_to_an_individual_or_to_a_cadre(xw, people):
    from engine.core import directory

    with xw.db.write() as s:
        directory.add_user(s, "zhao_cadre", "password123", ["committee@DONGAO"], display_name="赵村干")
    big = expense(xw, people, payee="王小明", amount=60000, category="service")
    expense(xw, people, payee="王小明", amount=49999, category="service")
    expense(xw, people, payee="宏达建筑有限公司", amount=60000, category="service")
    cadre = expense(xw, people, payee="赵村干", amount=300)
    found = {w["case_id"]: w for w in raised(xw, "WR-23")}
    assert set(found) == {big, cadre}
    assert found[cadre]["facts"]["cadre"] == "zhao_cadre"


def test_year_end_spending_spike(xw, people):
    for day in ("2025-01-10", "2025-02-10", "2025-03-10"):
        expense(xw, people, amount=900, day=day, category="reception")
    expense(xw, people, amount=600, day="2025-12-10", category="reception")
    assert not raised(xw, "WR-24")  # 600 < 3 x 245.45
    expense(xw, people, amount=900, day="2025-12-20", category="reception")
    found = raised(xw, "WR-24")
    assert len(found) == 1 and found[0]["case_id"] is None and found[0]["facts"]["year"] == 2025


# --- WR-15 / WR-16 lease -----------------------------------------------------------------------
def lease(xw, people, frozen, deal, overdue):
    cid = xw.start_case("V-AST-01", "DONGAO", people["joint_meeting"])
    settle(xw, frozen, cid, people, until="rent", data={
        "plan": {"reserve_price": deal, "lease_years": 3, "total_reserve": deal * 3, "previous_rent": 10000},
        "bidding": {"deal_reached": True, "deal_price": deal},
        "contract": {"annual_rent": deal}})
    do_step(xw, cid, "rent", people, overrides={"overdue_days": overdue, "rent_received": 0},
            take=None if overdue < 30 else None)
    return cid


def test_lease_below_previous_rent_and_rent_arrears(xw, people, frozen):
    bad = lease(xw, people, frozen, 8000, 30)
    lease(xw, people, frozen, 8100, 29)
    assert [w["case_id"] for w in raised(xw, "WR-15")] == [bad]
    assert [w["case_id"] for w in raised(xw, "WR-16")] == [bad]


# --- WR-17 settlement overrun -----------------------------------------------------------------
def test_settlement_overrun(xw, people, frozen):
    ids = {}
    for audited in (110000, 109999):
        cid = xw.start_case("B-PRJ-05", "DONGAO", people["committee"])
        run(xw, cid, people, until="disclose_settlement", data={
            "completion_request": {"contract_amount": 100000, "submitted_price": 120000},
            "settlement_audit": {"audited_price": audited, "reduction_amount": 120000 - audited}})
        ids[audited] = cid
    assert [w["case_id"] for w in raised(xw, "WR-17")] == [ids[110000]]


# --- WR-19 seal use ---------------------------------------------------------------------------------
def test_seal_use_outside_working_hours(xw, people):
    ids = {}
    for when in ("2026-03-02T10:00", "2026-03-02T21:30", "2026-03-07T10:00"):  # in the order they happened
        cid = xw.start_case("B-PUB-01", "DONGAO", people["handler"])
        run(xw, cid, people, until="register", data={"stamp": {"seal_time": when}})
        ids[when] = cid
    found = sorted(w["case_id"] for w in raised(xw, "WR-19"))
    assert found == sorted([ids["2026-03-02T21:30"], ids["2026-03-07T10:00"]])


# --- WR-20 overdue, XW-01 stalled, WR-21 quarterly disclosure -------------------------------------
def test_overdue_step_and_stalled_case(xw, people, frozen):
    cid = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    quick = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    do_step(xw, quick, "collect", people)
    frozen.advance(days=29)
    xw.tick()
    overdue = raised(xw, "WR-20", case_id=cid)
    assert len(overdue) == 1 and overdue[0]["facts"]["step"] == "collect" and overdue[0]["severity"] == "blue"
    assert not raised(xw, "XW-01")  # 29 days
    frozen.advance(days=2)
    xw.tick()
    assert {w["case_id"] for w in raised(xw, "XW-01")} == {cid, quick}
    do_step(xw, cid, "collect", people)  # completed late: the same facts, no second warning
    assert len(raised(xw, "WR-20", case_id=cid)) == 1


def test_quarterly_financial_disclosure_overdue(xw, people, frozen):
    cid = xw.start_case("V-PUB-01", "DONGAO", people["assets_center"])
    run(xw, cid, people, until="queries", data={"publish": {"notice_start": "2026-04-05"}})
    frozen.set("2026-04-14T01:00:00+00:00")
    xw.tick()
    assert not raised(xw, "WR-21")  # the deadline (15 April) has not passed
    frozen.set("2026-04-16T01:00:00+00:00")
    xw.tick()
    orgs = {w["org"] for w in raised(xw, "WR-21")}
    assert orgs == {"NANXI", "HEPING"}  # 东岙村 published on 5 April


# --- XW-02 separation of duties ---------------------------------------------------------------------
def test_same_person_as_handler_and_approver(xw, people):
    nanxi = {**people, **{k: people["nanxi_all"] for k in ("handler", "director", "joint_meeting", "party_branch",
                                                            "bookkeeper", "supervision_committee", "committee")}}
    one_man = expense(xw, nanxi, org="NANXI", amount=800, until="compile")
    expense(xw, people, amount=800, until="compile")
    found = raised(xw, "XW-02")
    assert {w["case_id"] for w in found} == {one_man}
    assert {tuple(w["facts"]["roles"]) for w in found} >= {("director", "handler")}


# --- XW-04 evidence missing at a payment step ------------------------------------------------------
def test_payment_step_without_evidence(xw, people):
    bare = purchase(xw, people, "永兴五金店", 3000, "2026-03-02")
    do_step(xw, bare, "reimburse", people)
    files = xw.store_files([("发票.pdf", b"%PDF-1.4\n%%EOF\n")], people["bookkeeper"])
    with_files = purchase(xw, people, "永兴五金店", 3000, "2026-03-02")
    do_step(xw, with_files, "reimburse", people, attachments=files)
    assert [w["case_id"] for w in raised(xw, "XW-04")] == [bare]


# --- XW-05 odd hours in bulk --------------------------------------------------------------------------
def test_bulk_actions_at_night(xw, people, frozen):
    set_param(xw, "DONGAO", "odd_hours_count", "3")
    frozen.set("2026-03-02T15:00:00+00:00")  # 23:00 China time
    expense(xw, people, amount=500, payee="甲")
    expense(xw, people, amount=500, payee="乙")
    assert not raised(xw, "XW-05")
    frozen.set("2026-03-02T17:30:00+00:00")  # 01:30 the same night
    expense(xw, people, amount=500, payee="丙")
    found = raised(xw, "XW-05")
    assert len(found) == 1 and found[0]["facts"]["count"] == 3 and found[0]["facts"]["actor"] == people["handler"]


def test_bulk_actions_at_night_found_by_a_worker_that_comes_days_later(xw, people, frozen):
    """The worker judges a night by the night's own steps, not by its own clock: a worker that drains
    the changes two days later (a backlog, a restart) raises the warning once, and a full scan
    afterwards finds nothing new."""
    from engine.services import worker
    from engine.services.facade import Xiaowei

    deferred = Xiaowei(xw.db, inline_background=False)
    set_param(xw, "DONGAO", "odd_hours_count", "3")
    frozen.set("2026-03-02T15:00:00+00:00")  # 23:00 China time
    expense(deferred, people, amount=500, payee="甲")
    expense(deferred, people, amount=500, payee="乙")
    frozen.set("2026-03-02T17:30:00+00:00")  # 01:30 the same night
    expense(deferred, people, amount=500, payee="丙")
    frozen.set("2026-03-03T15:00:00+00:00")  # the next night: one step, not part of the first night's count
    expense(deferred, people, amount=500, payee="丁")
    assert not raised(xw, "XW-05")  # nothing evaluated on the request path
    frozen.set("2026-03-05T03:00:00+00:00")  # the worker comes two days later
    assert worker.drain(deferred)["failed"] == 0
    found = raised(xw, "XW-05")
    assert len(found) == 1
    assert found[0]["facts"]["count"] == 3 and found[0]["facts"]["night"] == "2026-03-02"
    assert found[0]["facts"]["actor"] == people["handler"]
    with xw.db.write() as s:
        assert warnings.scan(s, rules={"XW-05"}) == []
    assert len(raised(xw, "XW-05")) == 1


# --- lifecycle ----------------------------------------------------------------------------------------
def test_lifecycle_with_opinions_in_the_case_trail(xw, people):
    cid = expense(xw, people, payee="宏达建筑有限公司", amount=60000, category="project")
    w = raised(xw, "WR-03")[0]
    with pytest.raises(InvalidData):
        xw.handle_warning(w["id"], "acknowledge", people["supervision_committee"], " ")
    with pytest.raises(Forbidden):
        xw.handle_warning(w["id"], "acknowledge", people["handler"], "看过了")
    xw.handle_warning(w["id"], "acknowledge", people["supervision_committee"], "已签收,核实中")
    result = xw.handle_warning(w["id"], "resolve", people["township_discipline"], "已责令补办进站手续")
    assert result["status"] == "resolved"
    with pytest.raises(Conflict):
        xw.handle_warning(w["id"], "dismiss", people["supervision_committee"], "重复")
    shown = xw.show_warning(w["id"])
    assert [e["type"] for e in shown["history"]] == ["warning_acknowledged", "warning_resolved"]
    assert shown["history"][1]["data"]["opinion"] == "已责令补办进站手续"
    trail = [e["type"] for e in xw.show_case(cid)["history"]]
    assert trail[-2:] == ["warning_acknowledged", "warning_resolved"]
    assert all(r.ok for r in xw.verify(cid))
    assert raised(xw, "WR-03", status="resolved")


def test_case_less_warning_goes_to_the_system_chain_and_red_opens_supervision(xw, people):
    for day in ("2025-01-10", "2025-02-10", "2025-03-10", "2025-12-20"):
        expense(xw, people, amount=900 if day < "2025-12" else 5000, day=day, category="reception")
    spike = raised(xw, "WR-24")[0]
    xw.handle_warning(spike["id"], "dismiss", people["supervision_office"], "年末集中支付工程款,有预算")
    assert xw.show_warning(spike["id"])["history"][0]["type"] == "warning_dismissed"
    assert all(r.ok for r in xw.verify())
    with pytest.raises(Conflict):
        xw.supervise_warning(spike["id"], people["township_discipline"], "督办")  # blue: no
    cid = expense(xw, people, payee="宏达建筑有限公司", amount=60000, category="project")
    red = raised(xw, "WR-03", case_id=cid)[0]
    result = xw.supervise_warning(red["id"], people["township_discipline"], "红色预警,立案督办")
    sup = xw.show_case(result["supervision_case_id"])
    assert sup["procedure_id"] == "T-SUP-01" and sup["org"] == "SFZ"
    assert xw.show_warning(red["id"])["status"] == "acknowledged"


def test_scope_of_the_list(xw, people):
    expense(xw, people, payee="宏达建筑有限公司", amount=60000, category="project")
    from engine.core import directory

    with xw.db.read() as s:
        dongao = directory.load_actor(s, people["supervision_committee"])
        nanxi = directory.load_actor(s, people["nanxi_all"])
    assert xw.list_warnings(actor=dongao)["total"] >= 1
    assert xw.list_warnings(actor=nanxi)["total"] == 0


def test_every_rule_is_described(xw):
    assert len(warnings.RULES) >= 20
    for r in warnings.RULES.values():
        assert r.zh and r.en and r.inspects and r.condition and r.severity in warnings.SEVERITIES


# --- the command line ---------------------------------------------------------------------------------
def test_cli_scan_list_and_kin(xw, people, frozen):
    from test_cli import run as cli

    url = str(xw.db.engine.url.render_as_string(hide_password=False))
    env = {"XIAOWEI_NOW": frozen.now().isoformat()}
    out = json.loads(cli(url, "kin", "add", "--org", "DONGAO", "--cadre", people["director"], "--person", "李四海",
                         "--relation", "spouse", "--json").stdout)
    assert out["degree"] == 1
    assert [k["person_name"] for k in json.loads(cli(url, "kin", "list", "--org", "SFZ", "--json").stdout)] == ["李四海"]
    # a history the incremental evaluation has not seen (rows written before the register existed)
    expense(xw, people, payee="李四海", amount=800)
    with xw.db.write() as s:
        from storage.models import SupervisionWarning, WarningSubject

        s.query(WarningSubject).delete()
        s.query(SupervisionWarning).delete()
    first = json.loads(cli(url, "warnings", "scan", "--json", env=env).stdout)
    assert "WR-08" in {w["rule"] for w in first["warnings"]}
    assert json.loads(cli(url, "warnings", "scan", "--json", env=env).stdout)["raised"] == 0
    listed = json.loads(cli(url, "warnings", "list", "--rule", "WR-08", "--json").stdout)
    assert listed == xw.list_warnings(rule="WR-08")
    wid = listed["warnings"][0]["id"]
    assert cli(url, "warnings", "ack", str(wid), "--opinion", "核实中", "--as", people["handler"], ok=False).returncode == 1
    cli(url, "warnings", "resolve", str(wid), "--opinion", "已回避并退回款项", "--as", people["supervision_committee"])
    assert xw.show_warning(wid)["status"] == "resolved"
    rules_out = json.loads(cli(url, "warnings", "rules", "--json").stdout)
    assert {"WR-01", "WR-20", "XW-02"} <= {r["id"] for r in rules_out}
