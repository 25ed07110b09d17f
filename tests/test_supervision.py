"""Supervision intelligence in the engine: dashboard figures from the derived tables and the trail,
the heat map, the cadre file and supervisors' notes, village grades with their notices, and the
monthly checklist with its warning rule (XW-06)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from engine.core import directory
from engine.services.supervision import analysis as supervision, warnings
from engine.core.errors import Forbidden, InvalidData, NotFound
from supervision_helpers import build_history, do, red_expense


def actor(xw, username):
    with xw.db.read() as s:
        return directory.load_actor(s, username)


def org_ids(xw, *codes):
    with xw.db.read() as s:
        return directory.descendants(s, [directory.get_org(s, c).id for c in codes])


# --- dashboard figures --------------------------------------------------------------------------------
def test_dashboard_figures(xw, people, frozen):
    h = build_history(xw, people, frozen)
    with xw.db.read() as s:
        data = supervision.dashboard(s, org_ids(xw, "SFZ"))
    dongao = next(v for v in data["villages"] if v["org"] == "DONGAO")
    assert dongao["cases"] == 4 and dongao["running"] == 4
    assert dongao["red"] == 1 and dongao["blue"] >= 1  # WR-03 red, WR-20 blue
    assert dongao["on_time"] == 1 and dongao["late"] == 1 and dongao["rate"] == 0.5
    assert data["on_time"] == {"with_due": 2, "on_time": 1, "late": 1, "rate": 0.5}
    proc = next(p for p in data["procedures"] if p["procedure_id"] == "V-DEC-01")
    assert proc["total"] == 3 and proc["running"] == 3
    collect = next(r for r in data["durations"] if r["procedure_id"] == "V-DEC-01" and r["step"] == "collect")
    assert collect["count"] == 2 and collect["max_hours"] == pytest.approx(20 * 24)
    assert collect["avg_hours"] == pytest.approx(10 * 24) and collect["late"] == 1
    assert {r["rule"] for r in data["rules"]} >= {"WR-03", "WR-20"}
    assert data["severity"]["red"] == 1
    march = next(m for m in data["trend"] if m["month"] == "2026-03")
    assert march["started"] == 4 and march["warnings"] >= 2
    assert len(data["trend"]) == 12 and data["trend"][-1]["month"] == "2026-03"
    assert [t["org"] for t in data["townships"]] == ["SFZ"] and data["townships"][0]["villages"] == 3
    # NANXI alone sees nothing of DONGAO
    with xw.db.read() as s:
        nanxi = supervision.dashboard(s, org_ids(xw, "NANXI"))
    assert [v["org"] for v in nanxi["villages"]] == ["NANXI"] and nanxi["severity"]["red"] == 0
    assert h["ready_quick"]


def test_dashboard_scope_follows_roles(xw, people):
    with xw.db.read() as s:
        assert supervision.may_see_dashboard(directory.load_actor(s, people["supervision_committee"]))
        assert not supervision.may_see_dashboard(directory.load_actor(s, people["bookkeeper"]))
        scope = supervision.dashboard_scope(s, directory.load_actor(s, people["committee"]))
        assert scope == org_ids(xw, "DONGAO")
        assert supervision.dashboard_scope(s, directory.load_actor(s, people["township_discipline"])) == \
            org_ids(xw, "SFZ")


def test_heat_map_tints_steps_by_waiting_and_clusters_warnings(xw, people, frozen):
    build_history(xw, people, frozen)
    with xw.db.read() as s:
        data = supervision.heat(s, "V-DEC-01", org_ids(xw, "SFZ"))
    by_step = {r["step"]: r for r in data["steps"]}
    assert by_step["collect"]["count"] == 3 and by_step["collect"]["open"] == 1  # 2 done, 1 open
    assert by_step["collect"]["heat"] == 1.0
    assert by_step["collect"]["warnings"]["total"] == 2  # WR-20 (open, completed late) names its step
    svg = supervision.heat_svg(data)
    assert svg.startswith("<svg") and "heat-10" in svg and 'data-step="collect"' in svg and "平均" in svg


# --- the monthly checklist and XW-06 --------------------------------------------------------------------
def test_monthly_checklist_is_started_once_per_village_and_month(xw, people, frozen):
    started = xw.supervision_monthly("2026-03")
    assert sorted(i["org"] for i in started) == ["DONGAO", "HEPING", "NANXI"]
    assert xw.supervision_monthly("2026-03") == []  # idempotent
    case = xw.show_case(next(i["case_id"] for i in started if i["org"] == "DONGAO"))
    assert case["procedure_id"] == "B-SUP-01" and case["started_by"] == "system"
    assert case["history"][0]["actor"] == "system" and case["current_steps"][0]["role"] == "liaison_station"
    assert [i["org"] for i in xw.supervision_monthly("2026-04", ["NANXI"])] == ["NANXI"]
    assert all(r.ok for r in xw.verify(case["id"]))


def test_a_finding_of_the_checklist_raises_a_warning(xw, people, frozen):
    cid = xw.supervision_monthly("2026-03", ["DONGAO"])[0]["case_id"]
    answers = {f"{a}_problem": False for a in warnings.CHECK_AREAS}
    answers.update({f"{a}_note": "已查阅,未发现问题" for a in warnings.CHECK_AREAS})
    answers.update({"finance_problem": True, "finance_note": "3月有2笔支出缺少监委会签字"})
    do(xw, cid, "check", people, overrides=answers)
    found = xw.list_warnings(rule="XW-06")["warnings"]
    assert len(found) == 1 and found[0]["case_id"] == cid and found[0]["facts"]["area"] == "finance"
    assert "缺少监委会签字" in found[0]["summary"] and found[0]["severity"] == "yellow"
    assert xw.scan_warnings(["XW-06"]) == []  # never twice
    do(xw, cid, "confirm", people)
    assert xw.show_case(cid)["status"] == "completed"


def test_tick_on_the_first_of_a_month_starts_checklists(xw, people, frozen):
    frozen.set("2026-03-31T12:00:00+00:00")  # 31 March 20:00 China time
    assert "monthly_started" not in xw.tick()
    frozen.set("2026-03-31T17:00:00+00:00")  # 1 April 01:00 China time
    result = xw.tick()
    assert result["monthly_started"] == 3
    assert xw.tick()["monthly_started"] == 0
    with xw.db.read() as s:
        assert {p["org"] for p in supervision.periodic_cases(s, "monthly_check", "2026-04")} == {"DONGAO", "NANXI", "HEPING"}


def test_cli_monthly(xw, people, db_url):
    from engine.cli import main

    out = CliRunner().invoke(main, ["supervision", "monthly", "--month", "2026-05", "--json", "--db", db_url])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["started"] == 3
    again = CliRunner().invoke(main, ["supervision", "monthly", "--month", "2026-05", "--db", db_url])
    assert again.exit_code == 0 and "0 件" in again.output
    bad = CliRunner().invoke(main, ["supervision", "monthly", "--month", "2026-13", "--db", db_url])
    assert bad.exit_code == 1 and "YYYY-MM" in bad.output


# --- grades and notices ----------------------------------------------------------------------------------
def test_grades_from_local_weights_and_notices_once(xw, people, frozen, db_url):
    red_expense(xw, people)  # one open red warning at 东岙村
    data = xw.grade_villages("2026-03")
    by_org = {g["org"]: g for g in data["grades"]}
    assert by_org["DONGAO"]["score"] == 90.0 and by_org["DONGAO"]["grade"] == "B"  # never A with an open red
    assert by_org["DONGAO"]["capped"] == "有1条未办结的红色预警,不评A级"
    assert by_org["NANXI"]["grade"] == "A" and by_org["NANXI"]["score"] == 100.0
    from test_warnings import set_param

    set_param(xw, "SFZ", "grade_weight_red", "30")  # the township weighs red warnings heavier
    assert {g["org"]: g["grade"] for g in xw.grade_villages("2026-03")["grades"]}["DONGAO"] == "C"
    set_param(xw, "DONGAO", "grade_weight_red", "45")  # the village's own setting wins
    graded = xw.grade_villages("2026-03", notify=True)
    assert {g["org"]: g["grade"] for g in graded["grades"]}["DONGAO"] == "D"
    assert [(n["org"], n["notice"]) for n in graded["notices"]] == [("DONGAO", "整改通知书")]
    assert xw.grade_villages("2026-03", notify=True)["notices"] == []  # once per village and month
    case = xw.show_case(graded["notices"][0]["case_id"])
    assert case["procedure_id"] == "B-SUP-02" and case["org"] == "DONGAO" and case["started_by"] == "system"
    assert case["current_steps"][0]["step_id"] == "issue" and case["current_steps"][0]["role"] == "township_discipline"
    # the notice runs: the township issues, the village's party branch rectifies, the township checks
    do(xw, case["id"], "issue", people)
    do(xw, case["id"], "rectify", people)
    do(xw, case["id"], "verify", people, overrides={"approved": True, "opinion": "整改到位"})
    assert xw.show_case(case["id"])["status"] == "completed"
    from engine.cli import main

    out = CliRunner().invoke(main, ["grades", "--month", "2026-03", "--json", "--no-notify", "--db", db_url])
    assert out.exit_code == 0, out.output
    assert {g["org"]: g["grade"] for g in json.loads(out.output)["grades"]}["DONGAO"] == "D"
    text = CliRunner().invoke(main, ["grades", "--month", "2026-03", "--db", db_url])
    assert text.exit_code == 0 and "DONGAO" in text.output and "新下发通知书 0 份" in text.output


def test_grade_counts_late_steps_and_a_c_grade_gets_a_warning_notice(xw, people, frozen):
    build_history(xw, people, frozen)
    # completed with a time limit: 1 on time, 1 late; open past it: 2 (stuck's collect, quick's propose)
    g = {g["org"]: g for g in xw.grade_villages("2026-03")["grades"]}["DONGAO"]
    assert g["steps_with_due"] == 4 and g["steps_late"] == 3
    assert g["open_warnings"] == {"red": 1, "yellow": 0, "blue": 3}
    assert g["deductions"] == {"red": 10.0, "yellow": 0.0, "blue": 3.0, "overdue": 22.5, "disclosure": 0.0}
    assert g["score"] == 64.5 and g["grade"] == "C"
    notices = xw.grade_villages("2026-03", notify=True)["notices"]
    assert [(n["org"], n["grade"], n["notice"]) for n in notices] == [("DONGAO", "C", "预警通知书")]
    # handled after the month's end, a warning still counted as open in that month
    frozen.set("2026-04-02T01:00:00+00:00")
    red = xw.list_warnings(rule="WR-03")["warnings"][0]
    xw.handle_warning(red["id"], "resolve", people["supervision_committee"], "已整改")
    assert {g["org"]: g for g in xw.grade_villages("2026-03")["grades"]}["DONGAO"]["open_warnings"]["red"] == 1
    assert {g["org"]: g for g in xw.grade_villages("2026-04")["grades"]}["DONGAO"]["open_warnings"]["red"] == 0


def test_grade_parameters_are_settable_like_rule_parameters(xw, db_url):
    from engine.cli import main

    out = CliRunner().invoke(main, ["params", "set", "grade_c_min", "65", "--org", "SFZ", "--db", db_url])
    assert out.exit_code == 0, out.output
    bad = CliRunner().invoke(main, ["params", "set", "grade_c_min", "abc", "--org", "SFZ", "--db", db_url])
    assert bad.exit_code == 1


# --- the cadre file and notes ---------------------------------------------------------------------------
def test_cadre_file_and_notes(xw, people, frozen):
    build_history(xw, people, frozen)
    sup = people["supervision_committee"]
    note = xw.record_note(sup, people["party_branch"], "talk", "就村道硬化项目进度滞后进行提醒谈话")
    lists = xw.record_note(people["township_discipline"], people["party_branch"], "three_lists",
                           responsibilities="落实“五议两公开”", problems="会议记录不全", risks="工程项目先实施后决策")
    assert note["kind_zh"] == "谈话" and lists["kind_zh"] == "三交底"
    with pytest.raises(InvalidData):
        xw.record_note(sup, people["party_branch"], "three_lists", responsibilities="只有一项")
    with pytest.raises(InvalidData):
        xw.record_note(sup, people["party_branch"], "talk", "  ")
    with pytest.raises(NotFound):  # a cadre of another village
        xw.record_note(sup, people["nanxi_all"], "notice", "提醒")
    with pytest.raises(Forbidden):  # not a supervisor
        xw.record_note(people["committee"], people["party_branch"], "notice", "提醒")
    with xw.db.read() as s:
        f = supervision.cadre_file(s, actor(xw, sup), people["party_branch"])
        cadres = supervision.list_cadres(s, actor(xw, sup))
    assert f["org"] == "DONGAO" and len(f["cases"]) == 3
    assert f["steps"] == {"with_due": 2, "on_time": 1, "late": 1, "rate": 0.5}
    assert [n["kind"] for n in f["notes"]] == ["three_lists", "talk"]
    assert f["warnings_total"] >= 1  # WR-20 of the case they started
    listed = {c["username"]: c for c in cadres}
    assert listed[people["party_branch"]]["notes"] == 2 and people["nanxi_all"] not in listed
    events = [e for e in _system_events(xw) if e["type"] == "supervision_note_recorded"]
    assert len(events) == 2 and "text" not in events[0]["data"] and events[0]["data"]["content_sha256"]
    assert all(r.ok for r in xw.verify())


def _system_events(xw):
    from sqlalchemy import select

    from engine.core import audit
    from storage.models import AuditEvent

    with xw.db.read() as s:
        return [audit.event_dict(e) for e in s.scalars(select(AuditEvent).where(AuditEvent.chain == "system"))]


def test_township_cadres_are_not_in_a_village_supervisors_file(xw, people):
    with xw.db.read() as s:
        with pytest.raises(NotFound):
            supervision.cadre_file(s, actor(xw, people["supervision_committee"]), people["township_staff"])
        f = supervision.cadre_file(s, actor(xw, people["township_discipline"]), people["committee"])
    assert f["username"] == people["committee"]
