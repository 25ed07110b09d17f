"""No stuck case (issue #13): values that used to pass validation and fail at run time — a timer of
99,999,999 days, ``params set <days> 99999999``, ``amount > float("nan")``, a division by zero, a huge
string in a condition — are refused where they enter, refused by lint where it can tell, and what
still fails at run time leaves the case unchanged, answers a clear Chinese 409, records an incident
on the case's trail, warns the township (XW-07) and lets the case continue after the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from conftest import ROOT, case_context, do_step, ready_steps
from engine.core import directory, procedures, spiff
from engine.core.definitions import NS
from engine.core.errors import EngineIncident, InvalidData
from engine.core.lint import lint_bytes
from storage.models import Case
from web_helpers import login

PROCESSES = Path(__file__).resolve().parent.parent / "processes"


def mutated(change) -> bytes:
    root = etree.fromstring((PROCESSES / "V-DEC-01.bpmn").read_bytes())
    change(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def set_condition(flow_id: str, condition: str):
    def change(root):
        flow = root.xpath(f"//bpmn:sequenceFlow[@id='{flow_id}']", namespaces=NS)[0]
        expr = flow.find("bpmn:conditionExpression", NS)
        expr.text = condition
    return change


def set_timers(expression: str):
    def change(root):
        for el in root.xpath("//bpmn:timeDuration", namespaces=NS):
            el.text = expression
    return change


PROPOSE_EXIT = next(flow.get("id") for flow in etree.fromstring((PROCESSES / "V-DEC-01.bpmn").read_bytes()).xpath(
    "//bpmn:sequenceFlow[bpmn:conditionExpression[starts-with(., 'is_major == False')]]", namespaces=NS))


def publish(xw, xml: bytes) -> None:
    result = lint_bytes(xml, "test.bpmn")
    assert result.ok, [str(p) for p in result.errors]
    with xw.db.write() as s:
        procedures.publish(s, xml, source="test.bpmn", actor="test")


def set_param(xw, key: str, value: str, org: str = "SFZ") -> None:
    with xw.db.write() as s:
        procedures.set_param(s, directory.get_org(s, org), key, value, actor="test")


def events(xw, case_id: int) -> list[dict]:
    return xw.show_case(case_id)["history"]


def walk_to(xw, case_id: int, people, step: str, choices: dict | None = None) -> None:
    for _ in range(20):
        ready = ready_steps(xw, case_id)
        if step in ready:
            return
        do_step(xw, case_id, ready[0], people, take=(choices or {}).get(ready[0]))
    raise AssertionError(f"{step} never became ready")


def assert_unchanged_and_recorded(xw, case_id: int, before: list[dict], ready: list[str], kind: str) -> dict:
    after = events(xw, case_id)
    assert [e["seq"] for e in after[:len(before)]] == [e["seq"] for e in before]
    new = after[len(before):]
    assert [e["type"] for e in new] == ["incident"], "the failed change left nothing but the incident"
    assert ready_steps(xw, case_id) == ready
    assert all(r.ok for r in xw.verify(case_id)), [p for r in xw.verify(case_id) for p in r.problems]
    incident = new[0]["data"]
    assert incident["kind"] == kind
    warning = xw.list_warnings(rule="XW-07")["warnings"]
    assert warning and warning[0]["case_id"] == case_id and warning[0]["severity"] == "red"
    return incident


# --- refused where they enter ------------------------------------------------------------------------

@pytest.mark.parametrize("key,value", [("decision_disclosure_days", "99999999"), ("major_amount", "NaN"),
                                       ("major_amount", "Infinity"), ("major_amount", "1E+30"),
                                       ("vrep_quorum", "3/2"), ("decision_disclosure_days", "9" * 5000)])
def test_out_of_range_parameters_are_refused_where_they_enter(xw, key, value):
    with pytest.raises(InvalidData) as refused:
        set_param(xw, key, value)
    assert "无效" in refused.value.message


def test_params_set_out_of_range_answers_a_message_on_the_command_line(xw, db_url):
    cmd = [sys.executable, "-m", "engine.cli", "params", "set", "decision_disclosure_days", "99999999",
           "--org", "SFZ", "--db", db_url]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1 and "0至3650天" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("condition,needle", [
    ('amount > float("nan")', "无效的数"),
    ("amount > 1 / 0", "除以零"),
    ('amount > "5000"', "数字和文字"),
    ("amount > duration_days(99999999)", "超出允许范围"),
])
def test_lint_refuses_conditions_that_fail_at_run_time(condition, needle):
    xml = mutated(set_condition("flow_4", f"is_major == False and {condition}"))
    errors = [p for p in lint_bytes(xml, "x.bpmn").errors if p.code == "runtime-condition"]
    assert any(needle in p.zh for p in errors), [str(p) for p in lint_bytes(xml, "x.bpmn").problems]


def test_lint_refuses_timers_out_of_range_and_warns_of_divisors_that_may_be_zero():
    timer = [p for p in lint_bytes(mutated(set_timers('duration_days(param("decision_disclosure_days") * 1000)')),
                                   "x").errors if p.code == "runtime-timer"]
    assert timer and "参数默认值" in timer[0].zh
    xml = mutated(set_condition("flow_20", "present < members_total / abstain"))
    found = [p for p in lint_bytes(xml, "x").problems if p.code == "runtime-condition"]
    assert found and found[0].severity == "warning" and "可能为零" in found[0].zh


def test_form_numbers_are_bounded(xw, people, case_id):
    with pytest.raises(InvalidData) as refused:
        xw.complete(case_id, "collect", people["party_branch"], {
            "matter_title": "村道", "matter_type": "project", "source": "villagers", "amount": "1E+999999",
            "opinions_summary": "同意"})
    assert "超出允许范围" in refused.value.errors["amount"]


# --- what still fails at run time: an incident, never a 500 -------------------------------------------

def test_a_timer_out_of_range_is_an_incident_and_the_case_continues_after_the_fix(xw, people, frozen):
    publish(xw, mutated(set_timers('duration_days(param("decision_disclosure_days") * 100)')))
    set_param(xw, "decision_disclosure_days", "365")  # 36,500 days: beyond the 3,650-day bound of a timer
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    walk_to(xw, case_id, people, "disclose_resolution")
    before = events(xw, case_id)
    with pytest.raises(EngineIncident) as stuck:
        do_step(xw, case_id, "disclose_resolution", people)
    assert stuck.value.status == 409 and "定时无法计算" in stuck.value.message
    incident = assert_unchanged_and_recorded(xw, case_id, before, ["disclose_resolution"], "range")
    assert incident["submission"]["step"] == "disclose_resolution" and incident["submission"]["data"]
    # The same failure again is not recorded twice.
    with pytest.raises(EngineIncident):
        do_step(xw, case_id, "disclose_resolution", people)
    assert [e["type"] for e in events(xw, case_id)].count("incident") == 1
    # The administrator fixes the parameter and retries: the failed submission is completed as its author.
    set_param(xw, "decision_disclosure_days", "7")
    result = xw.retry_case(case_id, people["township_staff"])
    assert result["completed"] == "disclose_resolution"
    assert result["changes"] == [{"key": "decision_disclosure_days", "label": "决议公开最短天数", "before": "365",
                                  "after": "7", "source": "SFZ"}]
    history = events(xw, case_id)
    done = [e for e in history if e["type"] == "step_completed"][-1]
    assert done["actor"] == people["committee"] and done["data"]["retried_by"] == people["township_staff"]
    assert xw.show_case(case_id)["timers"], "the notice period is running"
    assert xw.open_incident(case_id) is None
    assert all(r.ok for r in xw.verify(case_id))


def test_a_division_by_zero_is_an_incident_and_the_case_continues_after_the_fix(xw, people, frozen):
    # A parameter-dependent divisor: lint can only warn (a ratio may be set to anything in 0–1). It is
    # put on the proposal's gateway (a vote's gateway must follow its body's lawful rule, which lint checks).
    condition = 'is_major == False and amount < param("major_amount") / (param("vrep_pass") * 2 - 1)'
    publish(xw, mutated(set_condition(PROPOSE_EXIT, condition)))
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    walk_to(xw, case_id, people, "propose")
    before = events(xw, case_id)
    with pytest.raises(EngineIncident) as stuck:
        do_step(xw, case_id, "propose", people, overrides={"is_major": False})
    assert "除以零" in stuck.value.message and "没有保存" in stuck.value.message
    assert_unchanged_and_recorded(xw, case_id, before, ["propose"], "zero")
    staff = people["township_staff"]
    # A cadre may not retry; the administrator may, and a retry that still fails keeps nothing.
    from engine.core.errors import Conflict, Forbidden

    with pytest.raises(Forbidden):
        xw.retry_case(case_id, people["committee"])
    with pytest.raises(Conflict):
        xw.retry_case(case_id, staff)
    assert ready_steps(xw, case_id) == ["propose"]
    result = xw.retry_case(case_id, staff, {"vrep_pass": "3/5"})
    assert result["completed"] == "propose" and ready_steps(xw, case_id) != ["propose"]
    assert all(r.ok for r in xw.verify(case_id))


def test_a_huge_string_in_a_condition_answers_409_on_the_page_and_keeps_what_was_typed(app, xw, people, frozen):
    publish(xw, mutated(set_condition(
        "flow_7", "len(consult_opinion + consult_opinion + consult_opinion) < 0 or needs_township_review == True")))
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    walk_to(xw, case_id, people, "consult", choices={"propose": "flow_5"})
    definition, _params, _data = case_context(xw, case_id)
    client = login(app, people[definition.steps["consult"].role])
    long_text = "村两委联席会议意见" * 450  # 4,050 characters: three copies pass the 10,000 bound of a text
    form = {"csrf_token": client.csrf, "meeting_date": "2026-03-02", "consult_opinion": long_text,
            "supervisors_attended": "true", "needs_township_review": "false"}
    before = events(xw, case_id)
    page = client.post(f"/cases/{case_id}/steps/consult", data=form)
    assert page.status_code == 409
    assert "条件无法计算" in page.text and "文字或列表过长" in page.text and long_text in page.text
    assert "Traceback" not in page.text
    assert_unchanged_and_recorded(xw, case_id, before, ["consult"], "size")
    assert "运行故障" in client.get(f"/cases/{case_id}").text  # the case page says so
    # The API answers the same as JSON.
    api = client.post(f"/api/v1/cases/{case_id}/steps/consult", headers={"X-CSRF-Token": client.csrf},
                      json={k: v for k, v in form.items() if k != "csrf_token"})
    assert api.status_code == 409 and api.get_json()["error"] == "incident"
    # The fix is the data: a shorter opinion goes through.
    ok = client.post(f"/cases/{case_id}/steps/consult", data={**form, "consult_opinion": "同意按程序推进"})
    assert ok.status_code == 302 and "consult" not in ready_steps(xw, case_id)


def test_a_frozen_bad_value_of_an_old_case_is_fixed_by_the_cli_retry(xw, people, frozen, db_url):
    """Cases started before the bounds keep their frozen parameters: a retry with --param fixes one."""
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    with xw.db.write() as s:  # what an older version let in (as a migrated database would hold it)
        case = s.get(Case, case_id)
        rt = procedures.runtime(s, case.procedure_version_id)
        wf = spiff.load_state(case.state, rt.spec, rt.subprocess_specs)
        wf.data[spiff.PARAMS_KEY]["decision_disclosure_days"] = 99999999
        case.state = spiff.dump_state(wf)
    walk_to(xw, case_id, people, "disclose_resolution")
    with pytest.raises(EngineIncident):
        do_step(xw, case_id, "disclose_resolution", people)
    cmd = [sys.executable, "-m", "engine.cli", "case", "retry", str(case_id), "--as", people["township_staff"],
           "--param", "decision_disclosure_days=7", "--json", "--db", db_url]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "XIAOWEI_NOW": "2026-03-02T01:00:00+00:00"})
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["completed"] == "disclose_resolution" and out["changes"][0]["before"] == "99999999"
    bad = subprocess.run(cmd[:-5] + ["--param", "decision_disclosure_days=abc", "--db", db_url], capture_output=True,
                         text=True, cwd=ROOT)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr


# --- hostile XML answers a message ---------------------------------------------------------------------

def test_hostile_xml_in_the_modeler_save_answers_a_message(app, xw, people):
    client = login(app, people["district_admin"])  # district staff edit the district library
    bomb = (ROOT / "tests" / "fixtures" / "entity_bomb.bpmn").read_text(encoding="utf-8")
    response = client.post("/procedures/V-DEC-01/modeler/save", headers={"X-CSRF-Token": client.csrf},
                           json={"xml": bomb, "revision": 0})
    assert response.status_code == 422 and "DOCTYPE" in response.get_json()["message"]
    broken = client.post("/procedures/V-DEC-01/modeler/save", headers={"X-CSRF-Token": client.csrf},
                         json={"xml": "<bpmn:definitions", "revision": 0})
    assert broken.status_code == 422 and broken.get_json()["message"]


def test_a_large_import_without_diagram_is_refused_with_a_message(xw):
    from engine.services.editing import analyze_import

    tasks = "".join(f'<bpmn:userTask id="t{i}" name="步骤{i}"/><bpmn:sequenceFlow id="f{i}" sourceRef="t{i}" '
                    f'targetRef="t{i + 1}"/>' for i in range(6000))
    xml = (f'<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/'
           f'20100524/MODEL" id="d" targetNamespace="x"><bpmn:process id="BIG" isExecutable="true">{tasks}'
           f'<bpmn:userTask id="t6000" name="终"/></bpmn:process></bpmn:definitions>').encode()
    report = analyze_import(xml, "big.bpmn")
    assert report.status != "imported" and "KB" in report.message
