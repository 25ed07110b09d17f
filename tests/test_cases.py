"""Cases of the three foundation procedures: every path, permissions, bad input, timers, versions."""

from decimal import Decimal

import pytest

from engine.core import procedures
from engine.core.errors import Conflict, Forbidden, InvalidData, NotFound
from engine.services.scenarios import walk
from storage.models import AuditEvent, Case, WorkItem

from conftest import add_user, do_step, ready_steps, staff_at


def events(xw, case_id):
    return xw.show_case(case_id)["history"]


def event_types(xw, case_id):
    return [e["type"] for e in events(xw, case_id)]


def snapshot(xw, case_id):
    """Everything a failed attempt must leave untouched."""
    with xw.db.read() as s:
        case = s.get(Case, case_id)
        items = sorted((w.step_id, str(w.due_at)) for w in s.query(WorkItem).filter_by(case_id=case_id))
        n = s.query(AuditEvent).filter_by(case_id=case_id).count()
        return case.state, case.version, case.status, items, n


def tick_after(xw, frozen, days=30):
    def tick():
        frozen.advance(days=days)
        xw.tick()
    return tick


VDEC_START = {"matter_title": "修建村道", "amount": "80000"}


# --- V-DEC-01 五议两公开 ---------------------------------------------------------------------

def test_vdec_main_path_completes_with_every_checkpoint(xw, people, frozen):
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    result = walk(xw, case_id, people, tick=tick_after(xw, frozen))
    assert result.status == "completed"
    assert result.visited == [
        "collect", "propose", "consult", "party_review", "resolve", "resolve_supervision",
        "disclose_resolution", "disclose_resolution_objections", "implement", "disclose_result",
        "disclose_result_objections",
    ]
    types = event_types(xw, case_id)
    assert types[0] == "case_started" and types[-1] == "case_closed"
    assert types.count("step_completed") == 11
    assert types.count("timer_fired") == 2
    decisions = [e["data"] for e in events(xw, case_id) if e["type"] == "gateway_decided"]
    assert decisions[0]["gateway"] == "propose_gw" and decisions[0]["condition"] == "default"
    assert "is_major" in decisions[0]["inputs"]
    assert all(r.ok for r in xw.verify(case_id))


@pytest.mark.parametrize("choice, status, must_visit", [
    ({"propose": "flow_4"}, "terminated", []),  # not a major matter → 转一般事项
    ({"consult": "flow_7"}, "completed", ["township_review"]),  # township pre-review
    ({"consult": "flow_7", "township_review": "flow_10"}, "completed", ["township_review"]),  # rejected → re-propose
    ({"party_review": "flow_13"}, "completed", []),  # quorum not met → reconvene
    ({"party_review": "flow_14"}, "rejected", []),  # vote failed
    ({"resolve_supervision": "flow_18"}, "completed", []),  # supervisors return the vote record
    ({"resolve": "flow_20"}, "completed", []),  # representatives' quorum not met → reconvene
    ({"resolve": "flow_21"}, "rejected", []),  # resolution not passed
    ({"disclose_resolution_objections": "flow_26"}, "completed", []),  # objection upheld → back to propose
    ({"disclose_result_objections": "flow_32"}, "completed", []),  # objection upheld → redo implementation
])
def test_vdec_branches(xw, people, frozen, choice, status, must_visit):
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    result = walk(xw, case_id, people, choices=choice, tick=tick_after(xw, frozen))
    assert result.status == status
    for step in must_visit:
        assert step in result.visited
    step, flow = next(iter(choice.items()))
    taken = [e["data"] for e in events(xw, case_id) if e["type"] == "gateway_decided" and e["data"]["flow"] == flow]
    assert taken, f"{flow} was not taken"
    if status == "completed":
        # a loop back re-does the step before the gateway
        assert result.visited.count(step) >= 1


def test_vote_quorum_uses_local_parameter(xw, people, frozen):
    """A township may raise the quorum: with 3/4 required, 22 of 30 present is not a quorum (2/3 would be)."""
    with xw.db.write() as s:
        from engine.core.directory import get_org
        procedures.set_param(s, get_org(s, "SFZ"), "party_quorum", "3/4")
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    for step in ("collect", "propose", "consult"):
        do_step(xw, case_id, step, people)
    vote = {"meeting_date": "2026-03-02", "members_total": 30, "present": 22, "in_favour": 20, "against": 1, "abstain": 1}
    xw.complete(case_id, "party_review", people["party_members_meeting"], vote)
    assert ready_steps(xw, case_id) == ["party_review"]  # reconvene
    started = events(xw, case_id)[0]["data"]
    assert started["params"]["party_quorum"] == {"value": "3/4", "source": "SFZ"}


# --- B-PUR-02 小额采购 --------------------------------------------------------------------------

def test_small_purchase_paths(xw, people, frozen):
    main = xw.start_case("B-PUR-02", "DONGAO", people["handler"])
    assert walk(xw, main, people, tick=tick_after(xw, frozen)).status == "completed"
    # over the platform threshold: must go to the trading platform, the small procedure ends
    platform = xw.start_case("B-PUR-02", "DONGAO", people["handler"])
    assert walk(xw, platform, people, choices={"request": "flow_3"}).status == "terminated"
    # small amounts are approved by the director, larger ones by the joint meeting
    small = xw.start_case("B-PUR-02", "DONGAO", people["handler"])
    assert "director_approve" in walk(xw, small, people, choices={"request": "flow_4"},
                                      tick=tick_after(xw, frozen)).visited
    refused = xw.start_case("B-PUR-02", "DONGAO", people["handler"])
    assert walk(xw, refused, people, choices={"joint_approve": "flow_10"}).status == "rejected"
    returned = xw.start_case("B-PUR-02", "DONGAO", people["handler"])
    visited = walk(xw, returned, people, choices={"quote_supervision": "flow_14"}, tick=tick_after(xw, frozen)).visited
    assert visited.count("quote") == 2


def test_purchase_threshold_routes_on_amount(xw, people):
    case_id = xw.start_case("B-PUR-02", "DONGAO", people["handler"])
    data = {"purpose": "办公用品", "item_name": "打印纸", "quantity": 10, "budget_amount": "800",
            "cumulative_amount": "800"}
    xw.complete(case_id, "request", people["handler"], data)
    assert ready_steps(xw, case_id) == ["director_approve"]
    case2 = xw.start_case("B-PUR-02", "DONGAO", people["handler"])
    xw.complete(case2, "request", people["handler"], {**data, "budget_amount": "3000", "cumulative_amount": "3000"})
    assert ready_steps(xw, case2) == ["joint_approve"]


# --- B-SVC-01 低保 ------------------------------------------------------------------------------

def test_dibao_application_in_a_community_with_proxy(xw, people, frozen):
    heping = staff_at(xw, "HEPING", people)
    heping.pop("applicant")  # the applicant does not use the system: the committee acts for them (代办)
    case_id = xw.start_case("B-SVC-01", "HEPING", heping["committee"])
    result = walk(xw, case_id, heping, tick=tick_after(xw, frozen))
    assert result.status == "completed"
    first = [e for e in events(xw, case_id) if e["type"] == "step_completed"][0]
    assert first["data"]["on_behalf_of"] == {"name": "张三明", "reason": "申请人年老行动不便"}
    assert first["role"] == "committee"


@pytest.mark.parametrize("choice, status", [
    ({"accept": "flow_4"}, "completed"),  # materials incomplete → back to the applicant
    ({"investigate": "flow_7"}, "rejected"),  # disqualified
    ({"investigate": "flow_8"}, "completed"),  # democratic appraisal held
    ({"initial_review": "flow_15"}, "rejected"),
    ({"publicize_supervision": "flow_19"}, "completed"),
    ({"publicize_objections": "flow_23"}, "completed"),
    ({"county_confirm": "flow_26"}, "rejected"),
])
def test_dibao_branches(xw, people, frozen, choice, status):
    case_id = xw.start_case("B-SVC-01", "DONGAO", people["applicant"])
    assert walk(xw, case_id, people, choices=choice, tick=tick_after(xw, frozen)).status == status


# --- permissions and bad input ------------------------------------------------------------------

def test_role_and_village_are_checked_and_denials_recorded(xw, people):
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    payload = {"matter_title": "x", "matter_type": "project", "source": "villagers", "amount": "1",
               "opinions_summary": "y"}
    before = snapshot(xw, case_id)
    with pytest.raises(Forbidden, match="村\\(社区\\)党组织"):
        xw.complete(case_id, "collect", people["committee"], payload)  # wrong role, right village
    with pytest.raises(Forbidden):
        xw.complete(case_id, "collect", people["nanxi_all"], payload)  # right role, other village
    after = snapshot(xw, case_id)
    assert (after[0], after[2], after[3]) == (before[0], before[2], before[3])  # state, status, work items
    denied = [e for e in events(xw, case_id) if e["type"] == "access_denied"]
    assert [e["actor"] for e in denied] == [people["committee"], people["nanxi_all"]]
    assert all(r.ok for r in xw.verify(case_id))


def test_starting_needs_the_first_steps_role_and_the_right_edition(xw, people):
    with pytest.raises(Forbidden):
        xw.start_case("V-DEC-01", "DONGAO", people["bookkeeper"])
    with pytest.raises(InvalidData, match="村版事项"):
        xw.start_case("V-DEC-01", "HEPING", people["heping_committee"])
    with pytest.raises(NotFound):
        xw.start_case("X-NOPE-01", "DONGAO", people["party_branch"])
    with pytest.raises(NotFound):
        xw.start_case("V-DEC-01", "NOWHERE", people["party_branch"])
    with pytest.raises(InvalidData) as info:
        xw.start_case("V-DEC-01", "DONGAO", people["party_branch"], {"bogus": 1})
    assert "bogus" in info.value.errors


@pytest.mark.parametrize("data, field", [
    ({"matter_type": "project", "source": "villagers", "amount": "1", "opinions_summary": "y"}, "matter_title"),
    ({"matter_title": "x", "matter_type": "project", "source": "villagers", "amount": "abc", "opinions_summary": "y"},
     "amount"),
    ({"matter_title": "x", "matter_type": "castle", "source": "villagers", "amount": "1", "opinions_summary": "y"},
     "matter_type"),
    ({"matter_title": "x", "matter_type": "project", "source": "villagers", "amount": "-5", "opinions_summary": "y"},
     "amount"),
    ({"matter_title": "x", "matter_type": "project", "source": "villagers", "amount": "1", "opinions_summary": "y",
      "extra": 1}, "extra"),
])
def test_bad_form_data_changes_nothing(xw, people, data, field):
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    before = snapshot(xw, case_id)
    with pytest.raises(InvalidData) as info:
        xw.complete(case_id, "collect", people["party_branch"], data)
    assert field in info.value.errors
    assert snapshot(xw, case_id) == before


def test_vote_numbers_must_be_consistent(xw, people):
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    for step in ("collect", "propose", "consult"):
        do_step(xw, case_id, step, people)
    with pytest.raises(InvalidData, match="表单有误"):
        xw.complete(case_id, "party_review", people["party_members_meeting"],
                    {"meeting_date": "2026-03-02", "members_total": 30, "present": 31, "in_favour": 20,
                     "against": 0, "abstain": 0})


def test_steps_not_ready_or_done_and_unknown_ids(xw, people):
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    with pytest.raises(Conflict, match="尚未轮到"):
        do_step(xw, case_id, "consult", people)
    do_step(xw, case_id, "collect", people)
    with pytest.raises(Conflict, match="已被办理"):
        xw.complete(case_id, "collect", people["party_branch"], {})
    with pytest.raises(NotFound):
        xw.complete(case_id, "no_such_step", people["party_branch"], {})
    with pytest.raises(NotFound):
        xw.complete(999999, "collect", people["party_branch"], {})
    with pytest.raises(NotFound):
        xw.show_case(999999)


def test_due_times_follow_time_limits(xw, people, frozen):
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    (task,) = xw.tasks(case_id)
    assert task["due_at"] == "2026-03-12T09:30:00.000000Z"  # 10 calendar days, at the close of the office day
    do_step(xw, case_id, "collect", people)
    (task,) = xw.tasks(case_id)
    assert task["due_at"] == "2026-03-09T09:30:00.000000Z"  # 5 working days from a Monday, 17:30 China time
    frozen.advance(days=8)
    assert xw.tasks(case_id)[0]["overdue"] is True


def test_disclosure_timer_fires_only_after_its_deadline(xw, people, frozen):
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    for step in ("collect", "propose", "consult", "party_review", "resolve", "resolve_supervision",
                 "disclose_resolution"):
        do_step(xw, case_id, step, people)
    case = xw.show_case(case_id)
    assert case["current_steps"] == [] and len(case["timers"]) == 1
    assert case["timers"][0]["due_at"] == "2026-03-09T01:00:00.000000Z"  # 7 days, the local parameter
    frozen.advance(days=6, hours=23)
    assert xw.tick()["cases_advanced"] == 0
    assert ready_steps(xw, case_id) == []
    frozen.advance(hours=2)
    assert xw.tick()["cases_advanced"] == 1
    assert ready_steps(xw, case_id) == ["disclose_resolution_objections"]
    assert xw.tick()["due_cases"] == 0


def test_opening_a_case_fires_its_due_timers(xw, people, frozen):
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    for step in ("collect", "propose", "consult", "party_review", "resolve", "resolve_supervision",
                 "disclose_resolution"):
        do_step(xw, case_id, step, people)
    frozen.advance(days=8)
    shown = xw.show_case(case_id)  # no tick: reading fires it
    assert [t["step_id"] for t in shown["current_steps"]] == ["disclose_resolution_objections"]
    assert shown["history"][-1]["type"] in ("timer_fired", "steps_opened")


def test_cancel_needs_admin_role_and_reason(xw, people):
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    with pytest.raises(Forbidden):
        xw.cancel(case_id, people["party_branch"], "不想办了")
    with pytest.raises(InvalidData):
        xw.cancel(case_id, people["township_staff"], "  ")
    assert xw.cancel(case_id, people["township_staff"], "重复立项,撤销") == "cancelled"
    case = xw.show_case(case_id)
    assert case["status"] == "cancelled" and case["current_steps"] == []
    assert case["history"][-1]["data"]["reason"] == "重复立项,撤销"
    with pytest.raises(Conflict):
        do_step(xw, case_id, "collect", people)


def test_case_runs_on_the_version_it_started_with(xw, people, tmp_path):
    old = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    from engine.core.definitions import NS
    from lxml import etree
    from conftest import ROOT

    root = etree.fromstring((ROOT / "processes" / "V-DEC-01.bpmn").read_bytes())
    root.xpath("//bpmn:userTask[@id='collect']", namespaces=NS)[0].set("name", "征求意见(新版)")
    with xw.db.write() as s:
        version, created = procedures.publish(s, etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    assert created and version.version == 2
    new = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    assert xw.tasks(old)[0]["name"] == "征求意见(村民说事)"
    assert xw.tasks(new)[0]["name"] == "征求意见(新版)"
    assert xw.show_case(old)["procedure_version"] == 1 and xw.show_case(new)["procedure_version"] == 2
    do_step(xw, old, "collect", people)  # the old case still runs on v1
    assert ready_steps(xw, old) == ["propose"]


def test_tracking_codes_are_short_and_distinct(xw, people):
    codes = {xw.show_case(xw.start_case("V-DEC-01", "DONGAO", people["party_branch"]))["tracking_code"]
             for _ in range(5)}
    assert len(codes) == 5
    for code in codes:
        assert len(code) == 14 and code.count("-") == 2
        assert not set(code.replace("-", "")) & set("01IOL")


def test_money_values_stay_exact(xw, people):
    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"], {"amount": "49999.99"})
    do_step(xw, case_id, "collect", people, overrides={"amount": Decimal("49999.99")})
    completed = [e for e in events(xw, case_id) if e["type"] == "step_completed"][0]
    assert completed["data"]["data"]["amount"] == "49999.99"


def test_user_without_roles_cannot_act(xw, people):
    stranger = add_user(xw, "stranger")
    with pytest.raises(Forbidden):
        xw.start_case("V-DEC-01", "DONGAO", stranger)


def test_gateway_conditions_are_tried_in_document_order_not_diagram_position(xw, people):
    """SpiffWorkflow sorts exits by the targets' y coordinate; Xiaowei restores the written order."""
    from lxml import etree
    from engine.core.definitions import NS
    from conftest import ROOT

    root = etree.fromstring((ROOT / "processes" / "B-PUR-02.bpmn").read_bytes())
    flows = root.xpath("//bpmn:exclusiveGateway[@id='request_gw']/bpmn:outgoing/text()", namespaces=NS)
    first, second = (root.xpath(f"//bpmn:sequenceFlow[@id='{f}']", namespaces=NS)[0] for f in flows[:2])
    second.find("bpmn:conditionExpression", NS).text = 'budget_amount < param("daily_expense_limit")'  # overlaps
    shape = root.xpath(f"//bpmndi:BPMNShape[@bpmnElement='{second.get('targetRef')}']/dc:Bounds",
                       namespaces={**NS, "dc": "http://www.omg.org/spec/DD/20100524/DC"})[0]
    shape.set("y", "-500")  # draw the second target above the first
    with xw.db.write() as s:
        procedures.publish(s, etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    case_id = xw.start_case("B-PUR-02", "DONGAO", people["handler"])
    xw.complete(case_id, "request", people["handler"],
                {"purpose": "修路材料", "item_name": "水泥", "quantity": 100, "budget_amount": "800",
                 "cumulative_amount": "60000"})  # both conditions hold; the first written one wins
    case = xw.show_case(case_id)
    assert case["status"] == "terminated"
    decided = [e["data"] for e in case["history"] if e["type"] == "gateway_decided"][0]
    assert decided["flow"] == first.get("id") and decided["target"] == first.get("targetRef")
