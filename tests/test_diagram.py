"""Tests for engine.diagram: BPMN DI → standalone SVG."""

from __future__ import annotations

import glob
import os
import re

import pytest
from lxml import etree

from engine.render.diagram import (
    BPMN_NS,
    DiagramError,
    render_svg,
    render_svg_bytes,
    safe_parser,
    wrap_text,
)

SVG = "{http://www.w3.org/2000/svg}"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FIXTURE = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
    xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
    xmlns:di="http://www.omg.org/spec/DD/20100524/DI"
    xmlns:xw="urn:xiaowei:bpmn:1" id="defs" targetNamespace="urn:test">
  <bpmn:collaboration id="collab">
    <bpmn:participant id="pool" name="测试村重大事项" processRef="proc"/>
  </bpmn:collaboration>
  <bpmn:process id="proc" name="测试流程" isExecutable="true">
    <bpmn:laneSet id="ls">
      <bpmn:lane id="lane_reps" name="村民代表会议(村民会议)">
        <bpmn:flowNodeRef>start</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>vote</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>gw</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>timer</bpmn:flowNodeRef>
      </bpmn:lane>
      <bpmn:lane id="lane_evil" name="&lt;script&gt;alert(1)&lt;/script&gt;">
        <bpmn:flowNodeRef>disclose</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>end_done</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>end_rejected</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:startEvent id="start" name="发起"/>
    <bpmn:userTask id="vote" name="召开村民代表会议对重大事项进行表决并形成书面决议和会议记录归档备查">
      <bpmn:extensionElements><xw:step kind="vote" timeLimit="5wd"/></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:exclusiveGateway id="gw" name="表决结果" default="f_pass"/>
    <bpmn:intermediateCatchEvent id="timer" name="公示期(不少于7天)">
      <bpmn:timerEventDefinition id="td">
        <bpmn:timeDuration>duration_days(param("decision_disclosure_days"))</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:userTask id="disclose" name="x&quot; onload=&quot;alert(1)">
      <bpmn:extensionElements><xw:step kind="disclosure"/></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:endEvent id="end_done" name="办结">
      <bpmn:extensionElements><xw:end outcome="completed"/></bpmn:extensionElements>
    </bpmn:endEvent>
    <bpmn:endEvent id="end_rejected" name="未通过·终止">
      <bpmn:extensionElements><xw:end outcome="rejected"/></bpmn:extensionElements>
    </bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="vote"/>
    <bpmn:sequenceFlow id="f2" sourceRef="vote" targetRef="gw"/>
    <bpmn:sequenceFlow id="f_pass" name="通过" sourceRef="gw" targetRef="timer"/>
    <bpmn:sequenceFlow id="f_fail" name="未通过" sourceRef="gw" targetRef="end_rejected">
      <bpmn:conditionExpression>in_favour &lt;= present * param("vrep_pass")</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f3" sourceRef="timer" targetRef="disclose"/>
    <bpmn:sequenceFlow id="f4" sourceRef="disclose" targetRef="end_done"/>
  </bpmn:process>
  <bpmndi:BPMNDiagram id="diagram">
    <bpmndi:BPMNPlane id="plane" bpmnElement="collab">
      <bpmndi:BPMNShape id="pool_di" bpmnElement="pool" isHorizontal="true">
        <dc:Bounds x="100" y="60" width="800" height="320"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="lane_reps_di" bpmnElement="lane_reps" isHorizontal="true">
        <dc:Bounds x="130" y="60" width="770" height="160"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="lane_evil_di" bpmnElement="lane_evil" isHorizontal="true">
        <dc:Bounds x="130" y="220" width="770" height="160"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="start_di" bpmnElement="start">
        <dc:Bounds x="180" y="122" width="36" height="36"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="vote_di" bpmnElement="vote">
        <dc:Bounds x="250" y="100" width="100" height="80"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="gw_di" bpmnElement="gw" isMarkerVisible="true">
        <dc:Bounds x="400" y="115" width="50" height="50"/>
        <bpmndi:BPMNLabel><dc:Bounds x="395" y="85" width="60" height="14"/></bpmndi:BPMNLabel>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="timer_di" bpmnElement="timer">
        <dc:Bounds x="512" y="122" width="36" height="36"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="disclose_di" bpmnElement="disclose">
        <dc:Bounds x="580" y="260" width="100" height="80"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="end_done_di" bpmnElement="end_done">
        <dc:Bounds x="740" y="282" width="36" height="36"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="end_rejected_di" bpmnElement="end_rejected">
        <dc:Bounds x="407" y="282" width="36" height="36"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="ghost_di" bpmnElement="no_such_element">
        <dc:Bounds x="10" y="10" width="36" height="36"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNEdge id="f1_di" bpmnElement="f1">
        <di:waypoint x="216" y="140"/><di:waypoint x="250" y="140"/>
      </bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="f2_di" bpmnElement="f2">
        <di:waypoint x="350" y="140"/><di:waypoint x="400" y="140"/>
      </bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="f_pass_di" bpmnElement="f_pass">
        <di:waypoint x="450" y="140"/><di:waypoint x="512" y="140"/>
      </bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="f_fail_di" bpmnElement="f_fail">
        <di:waypoint x="425" y="165"/><di:waypoint x="425" y="282"/>
        <bpmndi:BPMNLabel><dc:Bounds x="430" y="210" width="40" height="14"/></bpmndi:BPMNLabel>
      </bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="f3_di" bpmnElement="f3">
        <di:waypoint x="548" y="140"/><di:waypoint x="630" y="140"/><di:waypoint x="630" y="260"/>
      </bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="f4_di" bpmnElement="f4">
        <di:waypoint x="680" y="300"/><di:waypoint x="740" y="300"/>
      </bpmndi:BPMNEdge>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
"""

NODE_IDS = ["start", "vote", "gw", "timer", "disclose", "end_done", "end_rejected"]
FLOW_IDS = ["f1", "f2", "f_pass", "f_fail", "f3", "f4"]

# A file as bpmn.io / Camunda Modeler would save it: no collaboration, no xw: extensions.
CAMUNDA = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
    xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
    xmlns:di="http://www.omg.org/spec/DD/20100524/DI"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Definitions_1"
    targetNamespace="http://bpmn.io/schema/bpmn" exporter="Camunda Modeler" exporterVersion="5.0.0">
  <bpmn:process id="Process_1" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"/>
    <bpmn:userTask id="Activity_1" name="Review application" camunda:assignee="demo"/>
    <bpmn:parallelGateway id="Gateway_1"/>
    <bpmn:endEvent id="Event_1"><bpmn:terminateEventDefinition id="t1"/></bpmn:endEvent>
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Activity_1"/>
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Activity_1" targetRef="Gateway_1"/>
    <bpmn:sequenceFlow id="Flow_3" sourceRef="Gateway_1" targetRef="Event_1"/>
  </bpmn:process>
  <bpmndi:BPMNDiagram id="BPMNDiagram_1">
    <bpmndi:BPMNPlane id="BPMNPlane_1" bpmnElement="Process_1">
      <bpmndi:BPMNShape id="_BPMNShape_StartEvent_2" bpmnElement="StartEvent_1">
        <dc:Bounds x="179" y="99" width="36" height="36"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="Activity_1_di" bpmnElement="Activity_1">
        <dc:Bounds x="270" y="77" width="100" height="80"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="Gateway_1_di" bpmnElement="Gateway_1">
        <dc:Bounds x="425" y="92" width="50" height="50"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNShape id="Event_1_di" bpmnElement="Event_1">
        <dc:Bounds x="532" y="99" width="36" height="36"/>
      </bpmndi:BPMNShape>
      <bpmndi:BPMNEdge id="Flow_1_di" bpmnElement="Flow_1">
        <di:waypoint x="215" y="117"/><di:waypoint x="270" y="117"/>
      </bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="Flow_2_di" bpmnElement="Flow_2">
        <di:waypoint x="370" y="117"/><di:waypoint x="425" y="117"/>
      </bpmndi:BPMNEdge>
      <bpmndi:BPMNEdge id="Flow_3_di" bpmnElement="Flow_3">
        <di:waypoint x="475" y="117"/><di:waypoint x="532" y="117"/>
      </bpmndi:BPMNEdge>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
"""

NO_DI = """<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">
  <bpmn:process id="p"><bpmn:startEvent id="s"/></bpmn:process>
</bpmn:definitions>
"""


def _root(xml: str = FIXTURE) -> etree._Element:
    return etree.fromstring(xml.encode("utf-8"), safe_parser())


def _svg(**kw: object) -> etree._Element:
    out = render_svg(_root(), **kw)  # type: ignore[arg-type]
    return etree.fromstring(out.encode("utf-8"))


def _group(svg: etree._Element, group_id: str) -> etree._Element:
    found = svg.xpath("//*[@id=$i]", i=group_id)
    assert len(found) == 1, group_id
    return found[0]


def _classes(element: etree._Element) -> set[str]:
    return set((element.get("class") or "").split())


def test_output_is_standalone_svg() -> None:
    out = render_svg(_root(), title="测试图")
    assert not out.startswith("<?xml")
    svg = etree.fromstring(out.encode("utf-8"))
    assert svg.tag == SVG + "svg"
    assert svg.get("role") == "img"
    assert svg.get("aria-label") == "测试图"
    assert svg.find(SVG + "title").text == "测试图"
    style = svg.find(SVG + "style").text
    assert '"Noto Sans CJK SC"' in style and "sans-serif" in style
    x, y, w, h = (float(v) for v in svg.get("viewBox").split())
    # All bounds (pool 100..900 x 60..380) are inside the viewBox, with a margin.
    assert x < 100 and y < 60 and x + w > 900 and y + h > 380
    assert float(svg.get("width")) == pytest.approx(w)
    assert float(svg.get("height")) == pytest.approx(h)


def test_default_title_is_process_or_pool_name() -> None:
    svg = _svg()
    assert svg.get("aria-label") == "测试流程"


def test_every_node_and_flow_has_a_group() -> None:
    svg = _svg()
    for node_id in NODE_IDS:
        group = _group(svg, "node-" + node_id)
        assert group.tag == SVG + "g"
        assert group.get("data-id") == node_id
        assert {"node", "state-default"} <= _classes(group)
        assert group[0].tag == SVG + "title"
    for flow_id in FLOW_IDS:
        group = _group(svg, "flow-" + flow_id)
        path = group.find(SVG + "path")
        assert path.get("marker-end") == "url(#xw-arrow)"
    assert _group(svg, "pool-pool") is not None
    assert _group(svg, "lane-lane_reps") is not None
    assert _group(svg, "lane-lane_evil") is not None


def test_unknown_elements_are_skipped() -> None:
    svg = _svg()
    assert not svg.xpath("//*[@data-id='no_such_element']")


def test_node_kinds_and_markers() -> None:
    svg = _svg()
    vote = _group(svg, "node-vote")
    assert {"kind-user-task", "step-vote"} <= _classes(vote)
    assert "表决" in "".join(vote.itertext())
    assert "公示" in "".join(_group(svg, "node-disclose").itertext())
    assert "kind-exclusive-gateway" in _classes(_group(svg, "node-gw"))
    assert "kind-intermediate-catch-event" in _classes(_group(svg, "node-timer"))
    assert "outcome-completed" in _classes(_group(svg, "node-end_done"))
    assert "outcome-rejected" in _classes(_group(svg, "node-end_rejected"))
    default = _group(svg, "flow-f_pass")
    assert "default" in _classes(default)
    assert default.find(SVG + "path").get("marker-start") == "url(#xw-default)"
    assert _group(svg, "flow-f_fail").find(SVG + "path").get("marker-start") is None
    labels = "".join(svg.itertext())
    for text in ("通过", "未通过", "表决结果", "公示期", "办结"):
        assert text in labels


def test_chinese_task_name_wraps_by_characters_with_ellipsis() -> None:
    svg = _svg()
    name = _group(svg, "node-vote").xpath(".//*[local-name()='text'][@class='name']")[0]
    lines = [t.text for t in name]
    assert 2 <= len(lines) <= 4
    assert all(len(line) <= 7 for line in lines)
    assert lines[0] == "召开村民代表会"
    assert lines[-1].endswith("…")


def test_wrap_text_rules() -> None:
    assert wrap_text("村民代表会议表决", 88, 12, 4, balance=False) == ["村民代表会议表", "决"]
    assert wrap_text("村民代表会议表决", 88, 12, 4) == ["村民代表", "会议表决"]
    # A short bracketed tail moves to the next line whole.
    assert wrap_text("公示期(不少于7天)", 76, 11.5, 3) == ["公示期", "(不少于7天)"]
    # Closing punctuation never starts a line.
    assert wrap_text("一二三四五六七。八", 88, 12, 4)[1][0] != "。"
    # Latin text breaks at spaces.
    assert wrap_text("Review the application", 88, 12, 4) == ["Review the", "application"]
    # Balancing never splits a word that greedy wrapping kept whole.
    assert wrap_text("Review the application form", 88, 12, 4) == [
        "Review the", "application", "form"]
    assert wrap_text("", 88, 12, 4) == []


def test_text_is_escaped_and_output_has_no_active_content() -> None:
    out = render_svg(_root(), title='<script>alert(2)</script>" onload="x')
    assert "<script" not in out.lower()
    svg = etree.fromstring(out.encode("utf-8"))
    for element in svg.iter():
        if not isinstance(element.tag, str):
            continue
        assert etree.QName(element).localname.lower() not in (
            "script", "foreignobject", "iframe", "image", "a", "use")
        for attr, value in element.attrib.items():
            name = etree.QName(attr).localname.lower()
            assert not name.startswith("on"), (element.tag, attr)
            assert "href" not in name
            assert "javascript:" not in value.lower()
            if "url(" in value:
                assert re.fullmatch(r"url\(#[\w-]+\)", value), value
    # The malicious names are there, but only as text.
    assert "<script>alert(1)</script>" in "".join(svg.itertext())
    assert 'x" onload="alert(1)' in "".join(_group(svg, "node-disclose").itertext())
    style = svg.find(SVG + "style").text
    assert "@import" not in style and "http" not in style and "url(" not in style


def test_highlights() -> None:
    svg = _svg(visited_nodes=["start", "vote", "gw"], visited_flows=["f1", "f2"],
               current=["timer"])
    assert "trail" in _classes(svg)
    assert "state-visited" in _classes(_group(svg, "node-vote"))
    assert "state-current" in _classes(_group(svg, "node-timer"))
    assert "当前" in "".join(_group(svg, "node-timer").itertext())
    assert "state-default" in _classes(_group(svg, "node-end_done"))
    f1 = _group(svg, "flow-f1")
    assert "visited" in _classes(f1)
    assert f1.find(SVG + "path").get("marker-end") == "url(#xw-arrow-visited)"
    assert "unvisited" in _classes(_group(svg, "flow-f3"))
    # Every referenced marker is defined inside the document.
    ids = set(svg.xpath("//*[local-name()='marker']/@id"))
    for value in svg.xpath("//@marker-end | //@marker-start"):
        assert value[5:-1] in ids


def test_overdue_marker() -> None:
    svg = _svg(current=["disclose"], overdue=["disclose"])
    group = _group(svg, "node-disclose")
    assert {"state-overdue", "state-current"} <= _classes(group)
    assert "超期" in "".join(group.itertext())
    assert "当前" not in "".join(group.itertext())
    english = etree.fromstring(render_svg(_root(), overdue=["disclose"], lang="en").encode())
    assert "overdue" in "".join(_group(english, "node-disclose").itertext())


def test_heat_tint() -> None:
    svg = _svg(heat={"vote": 0.94, "gw": 0.0, "disclose": 7.0, "timer": float("nan")})
    assert "heat-9" in _classes(_group(svg, "node-vote"))
    assert "heat-0" in _classes(_group(svg, "node-gw"))
    assert "heat-10" in _classes(_group(svg, "node-disclose"))
    assert ".heat-9 .shape" in svg.find(SVG + "style").text


def test_no_di_raises() -> None:
    with pytest.raises(DiagramError) as info:
        render_svg(_root(NO_DI))
    assert "BPMN DI" in str(info.value)
    with pytest.raises(DiagramError):
        render_svg_bytes(NO_DI.encode())
    with pytest.raises(DiagramError):
        render_svg_bytes(b"<not xml")


def test_deterministic() -> None:
    kw = {"visited_nodes": {"start", "vote"}, "current": {"gw"}, "heat": {"vote": 0.5}}
    first = render_svg(_root(), **kw)  # type: ignore[arg-type]
    second = render_svg(_root(), visited_nodes=["vote", "start"], current=("gw",),
                        heat={"vote": 0.5})
    assert first == second
    assert render_svg_bytes(FIXTURE.encode()) == render_svg(_root())


def test_other_modelers_render() -> None:
    svg = etree.fromstring(render_svg_bytes(CAMUNDA.encode()).encode())
    for node_id in ("StartEvent_1", "Activity_1", "Gateway_1", "Event_1"):
        _group(svg, "node-" + node_id)
    assert "outcome-terminated" in _classes(_group(svg, "node-Event_1"))
    assert "kind-parallel-gateway" in _classes(_group(svg, "node-Gateway_1"))
    assert svg.get("aria-label")


def test_entities_are_not_resolved() -> None:
    xml = CAMUNDA.replace(
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
    ).replace('name="Review application"', 'name="&e;"').encode()
    try:
        out = render_svg_bytes(xml)
    except DiagramError:
        return
    assert "root:" not in out


PROCESS_FILES = sorted(glob.glob(os.path.join(REPO, "processes", "*.bpmn")))


@pytest.mark.parametrize(
    "path",
    PROCESS_FILES or [pytest.param(None, marks=pytest.mark.skip(reason="no processes/*.bpmn"))],
    ids=[os.path.basename(p) for p in PROCESS_FILES] or ["none"],
)
def test_render_process_files(path: str) -> None:
    with open(path, "rb") as handle:
        root = etree.fromstring(handle.read(), safe_parser())
    svg = etree.fromstring(render_svg(root).encode("utf-8"))
    assert svg.tag == SVG + "svg"
    ids = set(svg.xpath("//@id"))
    flow_node_tags = {
        "task", "userTask", "manualTask", "serviceTask", "scriptTask", "businessRuleTask",
        "sendTask", "receiveTask", "callActivity", "subProcess", "startEvent", "endEvent",
        "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
        "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway",
        "complexGateway",
    }
    for process in root.iter("{%s}process" % BPMN_NS):
        for element in process.iter():
            if isinstance(element.tag, str) and etree.QName(element).localname in flow_node_tags:
                assert "node-" + element.get("id") in ids, element.get("id")
