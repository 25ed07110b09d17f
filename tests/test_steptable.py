"""Tests of the step-table → BPMN generator (engine/bpmn/steptable.py)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from lxml import etree
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser

from engine.bpmn import steptable
from engine.bpmn.steptable import PROCESSES_DIR, TABLES_DIR, Box, StepTableError, build_bpmn, load_table

NS = {
    "bpmn": steptable.BPMN_NS, "bpmndi": steptable.BPMNDI_NS, "dc": steptable.DC_NS,
    "di": steptable.DI_NS, "xw": steptable.XW_NS, "xsi": steptable.XSI_NS,
}
FLOW_NODES = ("startEvent", "endEvent", "userTask", "exclusiveGateway", "intermediateCatchEvent")

SAMPLE_YAML = """
id: T-SVC-99
name: 测试事项(全部检查点)
name_en: Test procedure
category: SVC
edition: both
handling_subject: 村民委员会
description: 覆盖全部检查点的测试事项。
requires: {disclosure: true, supervision: true}
legal_basis:
  - {source: 《测试法》, article: 第一条, status: typical, note: 测试}
risk_points: [先办后补]
parameters:
  - {key: limit, label: 金额上限, type: money, unit: 元, default: 10000, source: 测试}
  - {key: quorum, label: 到会比例, type: ratio, default: 2/3}
  - {key: pass_ratio, label: 通过比例, type: ratio, default: 3/5}
  - {key: notice_days, label: 公示天数, type: days, unit: 天, default: 5}
lanes:
  - {role: applicant}
  - {role: handler, label: 经办人}
  - {role: committee}
  - {role: supervision_committee}
  - {role: township_liaison}
steps:
  - id: apply
    name: 提出申请
    role: applicant
    kind: task
    time_limit: 3d
    proxy: true
    instructions: 填写申请。
    fields:
      - {name: amount, label: 金额, type: money, unit: 元, required: true, public: true, min: 0}
      - {name: withdraw, label: 撤回申请, type: boolean, required: true}
      - {name: kind_of, label: 类别, type: choice, required: true,
         options: [{value: a, label: 甲}, {value: b, label: 乙}]}
    constraints:
      - {test: "amount >= 0", message: 金额不能为负}
    gateway:
      - {when: withdraw == True, to: end_withdrawn, label: 撤回}
  - id: review
    name: 经办人审核
    role: handler
    kind: approval
    time_limit: 5wd
    supervision_note: {role: liaison_station, action: 抽查}
    approval: {on_reject: apply}
  - id: decide
    name: 村委会表决
    role: committee
    kind: vote
    time_limit: 48h
    basis: 测试法第二条
    vote: {body: villagers_representatives, quorum_param: quorum, pass_param: pass_ratio, pass_of: members,
           on_no_quorum: decide, on_fail: end_rejected}
    supervision: {role: supervision_committee, action: 监督表决, on_return: decide}
    gateway:
      - {when: 'amount > param("limit")', to: township_check, label: 超过上限}
    next: publish
  - id: township_check
    name: 镇街审核
    role: township_liaison
    kind: approval
    approval: {on_reject: decide}
  - id: publish
    name: 结果公示
    role: committee
    kind: disclosure
    evidence: 公示照片
    disclosure:
      what: 表决结果
      where: [公开栏, 线上平台]
      min_days_param: notice_days
      objection: {role: supervision_committee, on_upheld: decide}
  - id: archive
    name: 归档
    role: handler
    kind: task
ends:
  - {id: end_done, name: 办结, outcome: completed}
  - {id: end_rejected, name: 未通过, outcome: rejected}
  - {id: end_withdrawn, name: 已撤回, outcome: terminated}
"""


def sample() -> dict:
    return yaml.safe_load(SAMPLE_YAML)


def table_paths() -> list[Path]:
    return sorted(TABLES_DIR.glob("*.yaml"))


@pytest.fixture(scope="module")
def sample_xml() -> bytes:
    return build_bpmn(sample())


def tables() -> list[Any]:
    """The sample table and every table in processes/tables/, as lazily loaded parameters."""
    params = [pytest.param(sample, id="sample")]
    params += [pytest.param(lambda path=path: load_table(path), id=path.stem) for path in table_paths()]
    return params


# --------------------------------------------------------------------------------------------
# helpers


def parse(xml: bytes) -> etree._Element:
    return etree.fromstring(xml)


def flow_nodes(root: etree._Element) -> list[etree._Element]:
    process = root.find("bpmn:process", NS)
    return [element for element in process if etree.QName(element).localname in FLOW_NODES]


def shapes(root: etree._Element) -> dict[str, Box]:
    result = {}
    for shape in root.iterfind(".//bpmndi:BPMNShape", NS):
        bounds = shape.find("dc:Bounds", NS)
        result[shape.get("bpmnElement")] = Box(*(int(bounds.get(key)) for key in ("x", "y", "width", "height")))
    return result


def waypoints(root: etree._Element) -> dict[str, list[tuple[int, int]]]:
    return {edge.get("bpmnElement"): [(int(p.get("x")), int(p.get("y"))) for p in edge.iterfind("di:waypoint", NS)]
            for edge in root.iterfind(".//bpmndi:BPMNEdge", NS)}


def on_border(point: tuple[int, int], box: Box) -> bool:
    x, y = point
    inside = box.x <= x <= box.x + box.w and box.y <= y <= box.y + box.h
    return inside and (x in (box.x, box.x + box.w) or y in (box.y, box.y + box.h) or (x, y) in (
        (box.cx, box.y), (box.cx, box.y + box.h), (box.x, box.cy), (box.x + box.w, box.cy)))


def crosses(a: tuple[int, int], b: tuple[int, int], box: Box) -> bool:
    """True when the axis-parallel segment a–b passes through the interior of ``box``."""
    (x1, y1), (x2, y2) = a, b
    if x1 == x2:
        return box.x < x1 < box.x + box.w and min(y1, y2) < box.y + box.h and max(y1, y2) > box.y
    return box.y < y1 < box.y + box.h and min(x1, x2) < box.x + box.w and max(x1, x2) > box.x


def spiff_spec(xml: bytes, filename: str) -> Any:
    root = parse(xml)
    parser = SpiffBpmnParser(validator=VALIDATOR)
    parser.add_bpmn_xml(root, filename=filename)
    return parser.get_spec(root.find("bpmn:process", NS).get("id"))


# --------------------------------------------------------------------------------------------
# every table (the sample and processes/tables/*.yaml)


@pytest.mark.parametrize("get_table", tables())
def test_passes_xsd_and_spiff_parses(get_table: Callable[[], dict]) -> None:
    table = get_table()
    spec = spiff_spec(build_bpmn(table), f"{table['id']}.bpmn")
    step_ids = {step["id"] for step in table["steps"]}
    assert step_ids <= set(spec.task_specs)


@pytest.mark.parametrize("get_table", tables())
def test_every_node_has_a_shape_and_every_flow_an_edge(get_table: Callable[[], dict]) -> None:
    root = parse(build_bpmn(get_table()))
    boxes, edges = shapes(root), waypoints(root)
    for node in flow_nodes(root):
        assert node.get("id") in boxes, node.get("id")
    for flow in root.iterfind("bpmn:process/bpmn:sequenceFlow", NS):
        assert len(edges[flow.get("id")]) >= 2
    for lane in root.iterfind(".//bpmn:lane", NS):
        assert lane.get("id") in boxes
    assert root.find("bpmn:collaboration/bpmn:participant", NS).get("id") in boxes


@pytest.mark.parametrize("get_table", tables())
def test_no_overlapping_shapes_and_nodes_inside_their_lane(get_table: Callable[[], dict]) -> None:
    root = parse(build_bpmn(get_table()))
    boxes = shapes(root)
    nodes = [node.get("id") for node in flow_nodes(root)]
    for index, first in enumerate(nodes):
        for second in nodes[index + 1:]:
            assert not boxes[first].overlaps(boxes[second]), (first, second)
    pool = boxes[root.find("bpmn:collaboration/bpmn:participant", NS).get("id")]
    for lane in root.iterfind(".//bpmn:lane", NS):
        lane_box = boxes[lane.get("id")]
        assert lane_box.h >= 120
        assert _contains(pool, lane_box)
        for ref in lane.iterfind("bpmn:flowNodeRef", NS):
            assert _contains(lane_box, boxes[ref.text]), ref.text


def _contains(outer: Box, inner: Box) -> bool:
    return (outer.x <= inner.x and outer.y <= inner.y and inner.x + inner.w <= outer.x + outer.w
            and inner.y + inner.h <= outer.y + outer.h)


@pytest.mark.parametrize("get_table", tables())
def test_edges_are_orthogonal_attached_and_avoid_other_shapes(get_table: Callable[[], dict]) -> None:
    root = parse(build_bpmn(get_table()))
    boxes, edges = shapes(root), waypoints(root)
    node_ids = [node.get("id") for node in flow_nodes(root)]
    for flow in root.iterfind("bpmn:process/bpmn:sequenceFlow", NS):
        points = edges[flow.get("id")]
        source, target = flow.get("sourceRef"), flow.get("targetRef")
        assert on_border(points[0], boxes[source]), (flow.get("id"), points[0])
        assert on_border(points[-1], boxes[target]), (flow.get("id"), points[-1])
        for a, b in zip(points, points[1:]):
            assert a[0] == b[0] or a[1] == b[1], (flow.get("id"), a, b)
            for other in node_ids:
                if other not in (source, target):
                    assert not crosses(a, b, boxes[other]), (flow.get("id"), other)


@pytest.mark.parametrize("get_table", tables())
def test_generation_is_deterministic(get_table: Callable[[], dict]) -> None:
    first = build_bpmn(get_table())
    assert first.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n")
    assert build_bpmn(get_table()) == first


@pytest.mark.parametrize("path", table_paths(), ids=lambda path: path.stem)
def test_committed_bpmn_matches_its_table(path: Path) -> None:
    table = load_table(path)
    committed = PROCESSES_DIR / f"{table['id']}.bpmn"
    if not committed.exists():
        pytest.skip(f"{committed.name} not generated yet (python -m engine.steptable --all)")
    assert committed.read_bytes() == build_bpmn(table), (
        f"{committed.name} differs from its table; run python -m engine.steptable --all")


# --------------------------------------------------------------------------------------------
# the generated content (sample table)


def test_process_header(sample_xml: bytes) -> None:
    root = parse(sample_xml)
    assert root.get("targetNamespace") == "urn:xiaowei:procedures"
    assert set(root.nsmap) == {"bpmn", "bpmndi", "dc", "di", "xsi", "xw"}
    participant = root.find("bpmn:collaboration/bpmn:participant", NS)
    assert participant.get("processRef") == "T-SVC-99"
    process = root.find("bpmn:process", NS)
    assert (process.get("id"), process.get("name"), process.get("isExecutable")) == (
        "T-SVC-99", "测试事项(全部检查点)", "true")
    procedure = process.find("bpmn:extensionElements/xw:procedure", NS)
    assert procedure.get("category") == "SVC" and procedure.get("nameEn") == "Test procedure"
    params = process.findall("bpmn:extensionElements/xw:parameter", NS)
    assert [p.get("key") for p in params] == ["limit", "quorum", "pass_ratio", "notice_days"]
    assert params[1].get("default") == "2/3"
    requires = process.find("bpmn:extensionElements/xw:requires", NS)
    assert requires.attrib == {"disclosure": "true", "supervision": "true"}
    children = [etree.QName(child).localname for child in process]
    assert children.index("laneSet") == 1 and children[0] == "extensionElements"


def test_lanes(sample_xml: bytes) -> None:
    root = parse(sample_xml)
    lanes = root.findall(".//bpmn:lane", NS)
    assert [lane.get("id") for lane in lanes] == [
        "Lane_applicant", "Lane_handler", "Lane_committee", "Lane_supervision_committee",
        "Lane_township_liaison"]
    assert lanes[0].get("name") == steptable.role_names()["applicant"]
    assert lanes[1].get("name") == "经办人"
    assert lanes[2].find("bpmn:extensionElements/xw:role", NS).get("key") == "committee"
    refs = {ref.text: lane.get("id") for lane in lanes for ref in lane.iterfind("bpmn:flowNodeRef", NS)}
    assert len(refs) == len(flow_nodes(root))
    assert refs["start"] == "Lane_applicant"
    assert refs["decide_supervision"] == refs["decide_supervision_gw"] == "Lane_supervision_committee"
    assert refs["publish_period"] == "Lane_committee"
    assert refs["publish_objections"] == "Lane_supervision_committee"


def _flows(root: etree._Element) -> dict[str, etree._Element]:
    return {flow.get("id"): flow for flow in root.iterfind("bpmn:process/bpmn:sequenceFlow", NS)}


def _out(root: etree._Element, node_id: str) -> list[tuple[str, str | None, str | None]]:
    """(target, name, condition) of a node's outgoing flows, in order."""
    flows = _flows(root)
    node = root.find(f"bpmn:process/*[@id='{node_id}']", NS)
    result = []
    for ref in node.iterfind("bpmn:outgoing", NS):
        flow = flows[ref.text]
        condition = flow.find("bpmn:conditionExpression", NS)
        result.append((flow.get("targetRef"), flow.get("name"),
                       condition.text if condition is not None else None))
    return result


def _default_target(root: etree._Element, gateway_id: str) -> str:
    gateway = root.find(f"bpmn:process/bpmn:exclusiveGateway[@id='{gateway_id}']", NS)
    return _flows(root)[gateway.get("default")].get("targetRef")


def test_checkpoint_chain_order(sample_xml: bytes) -> None:
    root = parse(sample_xml)
    assert _out(root, "decide") == [("decide_supervision", None, None)]
    assert _out(root, "decide_supervision") == [("decide_supervision_gw", None, None)]
    assert _default_target(root, "decide_supervision_gw") == "decide_vote_gw"
    assert _default_target(root, "decide_vote_gw") == "decide_gw"
    assert _default_target(root, "decide_gw") == "publish"
    assert _out(root, "review") == [("review_approval_gw", None, None)]
    assert _out(root, "archive") == [("end_done", None, None)]


def test_vote_gateway(sample_xml: bytes) -> None:
    root = parse(sample_xml)
    quorum = 'members_total * param("quorum")'
    assert _out(root, "decide_vote_gw") == [
        ("decide", "到会不足法定人数", f"present < {quorum}"),
        ("end_rejected", "未通过",
         f'present >= {quorum} and in_favour <= members_total * param("pass_ratio")'),
        ("decide_gw", "通过", None),
    ]
    task = root.find("bpmn:process/bpmn:userTask[@id='decide']", NS)
    ext = task.find("bpmn:extensionElements", NS)
    assert ext.find("xw:step", NS).attrib == {"kind": "vote", "timeLimit": "48h"}
    assert ext.find("xw:basis", NS).text == "测试法第二条"
    assert [f.get("name") for f in ext.iterfind("xw:field", NS)] == [
        "meeting_date", "members_total", "present", "in_favour", "against", "abstain"]
    assert all(f.get("public") == "true" for f in ext.iterfind("xw:field", NS))
    assert [c.get("test") for c in ext.iterfind("xw:constraint", NS)] == [
        "present <= members_total", "in_favour + against + abstain <= present"]
    assert ext.find("xw:vote", NS).attrib == {"body": "villagers_representatives", "quorumParam": "quorum",
                                               "passParam": "pass_ratio", "quorumRule": "at_least",
                                               "passRule": "more_than", "passOf": "members"}


def test_vote_pass_of_present(sample_xml: bytes) -> None:
    table = sample()
    table["steps"][2]["vote"]["pass_of"] = "present"
    root = parse(build_bpmn(table))
    assert 'in_favour <= present * param("pass_ratio")' in _out(root, "decide_vote_gw")[1][2]


@pytest.mark.parametrize("quorum_rule, pass_rule, no_quorum, fail", [
    (None, None, "present < Q", "present >= Q and in_favour <= B"),
    ("at_least", "more_than", "present < Q", "present >= Q and in_favour <= B"),
    ("more_than", "more_than", "present <= Q", "present > Q and in_favour <= B"),
    ("at_least", "at_least", "present < Q", "present >= Q and in_favour < B"),
    ("more_than", "at_least", "present <= Q", "present > Q and in_favour < B"),
])
def test_vote_rules(quorum_rule: str | None, pass_rule: str | None, no_quorum: str, fail: str) -> None:
    """过半数 is strictly more than half; 三分之二以上 includes exactly two thirds (以上 includes the number)."""
    table = sample()
    vote = _step(table, "decide")["vote"]
    for key, rule in (("quorum_rule", quorum_rule), ("pass_rule", pass_rule)):
        if rule is not None:
            vote[key] = rule
    root = parse(build_bpmn(table))
    spell = {"Q": 'members_total * param("quorum")', "B": 'members_total * param("pass_ratio")'}
    exits = _out(root, "decide_vote_gw")
    assert exits[0][2] == no_quorum.replace("Q", spell["Q"])
    assert exits[1][2] == fail.replace("Q", spell["Q"]).replace("B", spell["B"])


def test_vote_rules_decide_the_boundary() -> None:
    """Exactly the threshold: passes an at_least rule, fails a more_than rule."""
    from fractions import Fraction

    from engine.core.expressions import compile_expression

    params = {"quorum": Fraction(2, 3), "pass_ratio": Fraction(1, 2)}
    exact = {"members_total": 30, "present": 20, "in_favour": 10}  # 20 = 2/3 of 30; 10 = 1/2 of 20
    results = {}
    for rule in ("at_least", "more_than"):
        table = sample()
        _step(table, "decide")["vote"].update(quorum_rule=rule, pass_rule=rule, pass_of="present")
        exits = _out(parse(build_bpmn(table)), "decide_vote_gw")
        results[rule] = [bool(compile_expression(c).evaluate(exact, params)) for _, _, c in exits[:2]]
    assert results["at_least"] == [False, False]    # quorum met, vote passed
    assert results["more_than"] == [True, False]    # no quorum (the failing exit is not reached)
    table = sample()
    _step(table, "decide")["vote"].update(quorum_rule="at_least", pass_rule="more_than", pass_of="present")
    exits = _out(parse(build_bpmn(table)), "decide_vote_gw")
    assert [bool(compile_expression(c).evaluate(exact, params)) for _, _, c in exits[:2]] == [False, True]


def test_branches_are_exclusive_in_table_order() -> None:
    """"First match wins": a later branch is guarded by the negation of the earlier ones it could
    overlap with, since the engine does not evaluate a gateway's exits in document order."""
    table = sample()
    _step(table, "apply")["gateway"] = [
        {"when": 'amount > param("limit")', "to": "end_withdrawn"},
        {"when": "amount > 100", "to": "review"},
        {"when": "withdraw == True and amount <= param(\"limit\")", "to": "end_withdrawn"},
        {"when": "withdraw == False or amount > 5", "to": "review"},
    ]
    root = parse(build_bpmn(table))
    assert [c for _, _, c in _out(root, "apply_gw")] == [
        'amount > param("limit")',
        'not (amount > param("limit")) and amount > 100',
        'not (amount > 100) and withdraw == True and amount <= param("limit")',
        'not (amount > param("limit")) and not (amount > 100) and not (withdraw == True and amount <= '
        'param("limit")) and (withdraw == False or amount > 5)',
        None,
    ]


def test_supervision_and_approval(sample_xml: bytes) -> None:
    root = parse(sample_xml)
    assert _out(root, "decide_supervision_gw")[0] == ("decide", "退回整改", "signed_off == False")
    sup = root.find("bpmn:process/bpmn:userTask[@id='decide_supervision']", NS)
    ext = sup.find("bpmn:extensionElements", NS)
    assert ext.find("xw:step", NS).get("kind") == "supervision"
    assert ext.find("xw:supervision", NS).attrib == {"role": "supervision_committee", "action": "监督表决"}
    assert [f.get("name") for f in ext.iterfind("xw:field", NS)] == ["signed_off", "supervision_opinion"]
    assert _out(root, "review_approval_gw") == [
        ("apply", "不同意", "approved == False"), ("decide", "同意", None)]
    review = root.find("bpmn:process/bpmn:userTask[@id='review']", NS)
    fields = review.findall("bpmn:extensionElements/xw:field", NS)
    assert [(f.get("name"), f.get("type")) for f in fields] == [("approved", "boolean"), ("opinion", "textarea")]
    note = review.find("bpmn:extensionElements/xw:supervisionNote", NS)
    assert note.attrib == {"role": "liaison_station", "action": "抽查"}


def test_disclosure_timer_and_objections(sample_xml: bytes) -> None:
    root = parse(sample_xml)
    publish = root.find("bpmn:process/bpmn:userTask[@id='publish']", NS)
    disclosure = publish.find("bpmn:extensionElements/xw:disclosure", NS)
    assert disclosure.attrib == {"what": "表决结果", "where": "公开栏;线上平台", "minDaysParam": "notice_days"}
    assert publish.find("bpmn:extensionElements/xw:step", NS).get("evidence") == "公示照片"
    timer = root.find("bpmn:process/bpmn:intermediateCatchEvent[@id='publish_period']", NS)
    assert timer.get("name") == "公示期(不少于5天)"
    assert timer.find("bpmn:extensionElements/xw:noticePeriod", NS).get("for") == "publish"
    duration = timer.find("bpmn:timerEventDefinition/bpmn:timeDuration", NS)
    assert duration.text == 'duration_days(param("notice_days"))'
    assert duration.get(f"{{{steptable.XSI_NS}}}type") == "bpmn:tFormalExpression"
    objections = root.find("bpmn:process/bpmn:userTask[@id='publish_objections']", NS)
    assert objections.get("name") == "公示期满·核实异议"
    ext = objections.find("bpmn:extensionElements", NS)
    assert [f.get("name") for f in ext.iterfind("xw:field", NS)] == [
        "objection_count", "objection_upheld", "objection_reply"]
    constraint = ext.find("xw:constraint", NS)
    assert constraint.attrib == {"test": "objection_count > 0 or not objection_upheld",
                                 "message": "无异议时不能认定异议成立"}
    assert _out(root, "publish_objections_gw") == [
        ("decide", "异议成立", "objection_upheld == True"), ("archive", None, None)]


def test_generic_gateway_and_task_details(sample_xml: bytes) -> None:
    root = parse(sample_xml)
    assert _out(root, "apply_gw") == [("end_withdrawn", "撤回", "withdraw == True"), ("review", None, None)]
    apply = root.find("bpmn:process/bpmn:userTask[@id='apply']", NS)
    assert apply.find("bpmn:documentation", NS).text == "填写申请。"
    step = apply.find("bpmn:extensionElements/xw:step", NS)
    assert step.attrib == {"kind": "task", "timeLimit": "3d", "proxy": "true", "nameEn": "Apply"}  # glossary
    choice = apply.find("bpmn:extensionElements/xw:field[@name='kind_of']", NS)
    assert [o.attrib for o in choice] == [{"value": "a", "label": "甲"}, {"value": "b", "label": "乙"}]
    children = [etree.QName(child).localname for child in apply]
    assert children == ["documentation", "extensionElements", "incoming", "incoming", "outgoing"]
    end = root.find("bpmn:process/bpmn:endEvent[@id='end_withdrawn']", NS)
    assert end.find("bpmn:extensionElements/xw:end", NS).get("outcome") == "terminated"
    flow_ids = [flow.get("id") for flow in root.iterfind("bpmn:process/bpmn:sequenceFlow", NS)]
    assert flow_ids == [f"flow_{n}" for n in range(1, len(flow_ids) + 1)]


def test_gateways_have_markers_and_labels(sample_xml: bytes) -> None:
    root = parse(sample_xml)
    for shape in root.iterfind(".//bpmndi:BPMNShape", NS):
        element = root.find(f"bpmn:process/*[@id='{shape.get('bpmnElement')}']", NS)
        if element is None:
            continue
        kind = etree.QName(element).localname
        if kind == "exclusiveGateway":
            assert shape.get("isMarkerVisible") == "true"
        if kind != "userTask" and element.get("name"):
            assert shape.find("bpmndi:BPMNLabel/dc:Bounds", NS) is not None


# --------------------------------------------------------------------------------------------
# errors


def _step(table: dict, step_id: str) -> dict:
    return next(step for step in table["steps"] if step["id"] == step_id)


ERRORS: list[tuple[str, Callable[[dict], None], str]] = [
    ("unknown role", lambda t: _step(t, "apply").update(role="nobody"), "step 'apply'.role: unknown role 'nobody'"),
    ("role without lane", lambda t: _step(t, "archive").update(role="director"),
     "step 'archive'.role: role 'director' has no lane"),
    ("unknown lane role", lambda t: t["lanes"].append({"role": "ghost"}), "lanes[5]: unknown role 'ghost'"),
    ("duplicate step id", lambda t: _step(t, "archive").update(id="apply"), "duplicate or reserved id 'apply'"),
    ("step id clashes with end", lambda t: _step(t, "archive").update(id="end_done"),
     "duplicate or reserved id 'end_done'"),
    ("generated id clash", lambda t: _step(t, "archive").update(id="decide_vote_gw"),
     "duplicate or reserved id 'decide_vote_gw'"),
    ("unknown next", lambda t: _step(t, "archive").update(next="nowhere"),
     "step 'archive'.next: unknown target 'nowhere'"),
    ("unknown gateway target", lambda t: _step(t, "apply")["gateway"][0].update(to="nowhere"),
     "step 'apply'.gateway[0].to: unknown target 'nowhere'"),
    ("unknown on_fail", lambda t: _step(t, "decide")["vote"].update(on_fail="nowhere"),
     "step 'decide'.vote.on_fail: unknown target 'nowhere'"),
    ("unknown on_upheld", lambda t: _step(t, "publish")["disclosure"]["objection"].update(on_upheld="x"),
     "step 'publish'.disclosure.objection.on_upheld: unknown target 'x'"),
    ("bad time limit", lambda t: _step(t, "apply").update(time_limit="3 days"),
     "step 'apply'.time_limit: bad time limit '3 days'"),
    ("numeric time limit", lambda t: _step(t, "apply").update(time_limit=3), "bad time limit 3"),
    ("unknown kind", lambda t: _step(t, "archive").update(kind="party"), "step 'archive'.kind: unknown kind 'party'"),
    ("unknown field type", lambda t: _step(t, "apply")["fields"][0].update(type="currency"),
     "step 'apply'.fields[0]: unknown field type 'currency'"),
    ("choice without options", lambda t: _step(t, "apply")["fields"][2].pop("options"),
     "step 'apply'.fields[2].options: expected a non-empty list"),
    ("sugar on wrong kind", lambda t: _step(t, "archive").update(approval={"on_reject": "apply"}),
     "step 'archive'.approval: `approval` requires kind 'approval', not 'task'"),
    ("kind without sugar", lambda t: _step(t, "review").pop("approval"),
     "step 'review': a step of kind 'approval' needs a `approval` checkpoint"),
    ("sugar missing key", lambda t: _step(t, "decide")["vote"].pop("on_no_quorum"),
     "step 'decide'.vote: missing key 'on_no_quorum'"),
    ("unknown vote rule", lambda t: _step(t, "decide")["vote"].update(pass_rule="half"),
     "step 'decide'.vote.pass_rule: unknown pass_rule 'half' (allowed: at_least, more_than)"),
    ("undeclared parameter", lambda t: _step(t, "decide")["vote"].update(quorum_param="nope"),
     "step 'decide'.vote.quorum_param: undeclared parameter 'nope'"),
    ("parameter in condition", lambda t: _step(t, "decide")["gateway"][0].update(when='amount > param("nope")'),
     "uses undeclared parameter 'nope'"),
    ("unsafe condition", lambda t: _step(t, "apply")["gateway"][0].update(when="__import__('os')"),
     "step 'apply'.gateway[0].when: invalid expression"),
    ("unknown step key", lambda t: _step(t, "apply").update(tiem_limit="3d"), "steps[0]: unknown key 'tiem_limit'"),
    ("duplicate field", lambda t: _step(t, "decide").update(fields=[{"name": "present", "label": "x", "type": "integer"}]),
     "step 'decide'.fields: duplicate field 'present'"),
    ("no completed end", lambda t: t["ends"][0].update(outcome="rejected"), "ends: no end with outcome 'completed'"),
    ("unknown category", lambda t: t.update(category="XYZ"), "category: unknown category 'XYZ'"),
    ("unreachable step", lambda t: _step(t, "apply")["gateway"][0].update(to="review") or
     _step(t, "publish").update(next="end_done"), "task 'archive': is not reachable from the start"),
]


@pytest.mark.parametrize("mutate, expected", [pytest.param(m, e, id=name) for name, m, e in ERRORS])
def test_load_table_errors_are_clear(tmp_path: Path, mutate: Callable[[dict], None], expected: str) -> None:
    table = copy.deepcopy(sample())
    mutate(table)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(table, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(StepTableError) as info:
        load_table(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message


def test_unquoted_ascii_comma_gets_a_hint(tmp_path: Path) -> None:
    text = SAMPLE_YAML.replace("note: 测试}", "note: 测试,第二句}")
    path = tmp_path / "comma.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StepTableError, match="legal_basis\\[0\\]: unknown key '第二句'.*full-width comma"):
        load_table(path)


def test_yaml_syntax_error_names_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("id: [unclosed\n", encoding="utf-8")
    with pytest.raises(StepTableError, match="bad.yaml: cannot read step table"):
        load_table(path)


# --------------------------------------------------------------------------------------------
# command line


def test_cli_single_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "T.yaml"
    source.write_text(SAMPLE_YAML, encoding="utf-8")
    output = tmp_path / "T.bpmn"
    assert steptable.main([str(source), "-o", str(output)]) == 0
    assert output.read_bytes() == build_bpmn(sample())
    assert capsys.readouterr().out.count("\n") == 1


def test_cli_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    tables_dir = tmp_path / "tables"
    tables_dir.mkdir()
    (tables_dir / "T-SVC-99.yaml").write_text(SAMPLE_YAML, encoding="utf-8")
    (tables_dir / "broken.yaml").write_text("id: x\n", encoding="utf-8")
    monkeypatch.setattr(steptable, "TABLES_DIR", tables_dir)
    monkeypatch.setattr(steptable, "PROCESSES_DIR", tmp_path)
    assert steptable.main(["--all"]) == 1
    captured = capsys.readouterr()
    assert (tmp_path / "T-SVC-99.bpmn").read_bytes() == build_bpmn(sample())
    assert captured.out.strip().endswith("T-SVC-99.bpmn")
    assert "broken.yaml" in captured.err
