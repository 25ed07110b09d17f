"""`xiaowei lint`: the library is clean, and each convention catches the mistake it exists for."""

from pathlib import Path

import pytest
from lxml import etree

from engine.core.definitions import NS
from engine.core.lint import lint_bytes

PROCESSES = Path(__file__).resolve().parent.parent / "processes"
BPMN_FILES = sorted(PROCESSES.glob("*.bpmn"))


@pytest.mark.parametrize("path", BPMN_FILES, ids=[p.stem for p in BPMN_FILES])
def test_every_library_procedure_is_clean(path):
    result = lint_bytes(path.read_bytes(), path.name)
    assert result.problems == [], "\n".join(map(str, result.problems))


def mutate(procedure: str, change) -> bytes:
    root = etree.fromstring((PROCESSES / f"{procedure}.bpmn").read_bytes())
    change(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def codes(xml: bytes) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for p in lint_bytes(xml, "mutated.bpmn").errors:
        found.setdefault(p.code, set()).add(p.element)
    return found


def by_id(root, element_id):
    return root.xpath(f"//*[@id='{element_id}']")[0]


def test_skipping_a_disclosure_is_caught_naming_the_path():
    def bypass(root):
        # A passed resolution goes straight to 办结, skipping both notices (决议公开, 实施结果公开).
        flow = root.xpath("//bpmn:sequenceFlow[@targetRef='disclose_resolution']", namespaces=NS)[0]
        flow.set("targetRef", "end_done")
    xml = mutate("V-DEC-01", bypass)
    problems = [p for p in lint_bytes(xml, "x").errors if p.code == "checkpoint-bypass"]
    assert len(problems) == 1
    assert "公开公示" in problems[0].zh and "end_done" == problems[0].element


def test_user_task_outside_a_lane_and_unknown_role():
    def change(root):
        ref = root.xpath("//bpmn:flowNodeRef[text()='implement']", namespaces=NS)[0]
        ref.getparent().remove(ref)
        role = root.xpath("//bpmn:lane[@id='Lane_party_branch']//xw:role", namespaces=NS)[0]
        role.set("key", "village_king")
    found = codes(mutate("V-DEC-01", change))
    assert found["no-lane"] == {"implement"}
    assert found["lane-role"] == {"Lane_party_branch"}


@pytest.mark.parametrize("expression", [
    "__import__('os').system('touch /tmp/pwned')",
    "amount.__class__.__mro__",
    "[c for c in ().__class__.__base__.__subclasses__()]",
])
def test_unsafe_condition_is_rejected_naming_element_and_expression(expression):
    def change(root):
        cond = root.xpath("//bpmn:sequenceFlow[@id='flow_4']/bpmn:conditionExpression", namespaces=NS)[0]
        cond.text = expression
    problems = [p for p in lint_bytes(mutate("V-DEC-01", change), "x").errors if p.code == "unsafe-expression"]
    assert problems and problems[0].element == "flow_4"
    assert expression in problems[0].en


def test_unsafe_timer_expression_is_rejected():
    def change(root):
        timer = root.xpath("//bpmn:intermediateCatchEvent[@id='disclose_resolution_period']//bpmn:timeDuration",
                           namespaces=NS)[0]
        timer.text = "__import__('time').sleep(100)"
    assert "disclose_resolution_period" in codes(mutate("V-DEC-01", change))["unsafe-expression"]


def test_gateway_without_default_and_with_a_gap():
    def change(root):
        gw = by_id(root, "propose_gw")
        del gw.attrib["default"]
        flow = by_id(root, "flow_5")
        cond = etree.SubElement(flow, f"{{{NS['bpmn']}}}conditionExpression")
        cond.text = "is_major == True"
    found = codes(mutate("V-DEC-01", change))
    # is_major False with a large amount matches neither exit
    assert found["gateway-incomplete"] == {"propose_gw"}


def test_conditions_covering_all_cases_need_no_default():
    def change(root):
        gw = by_id(root, "propose_gw")
        del gw.attrib["default"]
        flow = by_id(root, "flow_5")
        cond = etree.SubElement(flow, f"{{{NS['bpmn']}}}conditionExpression")
        cond.text = 'is_major == True or amount >= param("major_amount")'
    assert "gateway-incomplete" not in codes(mutate("V-DEC-01", change))


def test_condition_on_unknown_field_and_undeclared_parameter():
    def change(root):
        by_id(root, "flow_4").find("bpmn:conditionExpression", NS).text = 'budget > param("nonexistent")'
    found = codes(mutate("V-DEC-01", change))
    assert found["unknown-field"] == {"flow_4"}
    assert found["unknown-param"] == {"flow_4"}


def test_script_tasks_and_spiff_scripts_are_refused():
    def change(root):
        task = by_id(root, "implement")
        ext = task.find("bpmn:extensionElements", NS)
        script = etree.SubElement(ext, "{http://spiffworkflow.org/bpmn/schema/1.0/core}preScript")
        script.text = "import os"
        task.tag = f"{{{NS['bpmn']}}}scriptTask"
    found = codes(mutate("V-DEC-01", change))
    assert "implement" in found["script"]
    assert "implement" in found["unsupported"]


def test_missing_diagram_interchange_is_reported():
    def change(root):
        shape = root.xpath("//bpmndi:BPMNShape[@bpmnElement='implement']", namespaces=NS)[0]
        shape.getparent().remove(shape)
        edge = root.xpath("//bpmndi:BPMNEdge[@bpmnElement='flow_4']", namespaces=NS)[0]
        edge.getparent().remove(edge)
    found = codes(mutate("V-DEC-01", change))
    assert found["di-shape"] == {"implement"}
    assert found["di-edge"] == {"flow_4"}


def test_xsd_violation_is_reported():
    def change(root):
        by_id(root, "implement").set("bogusAttribute", "1")
    result = lint_bytes(mutate("V-DEC-01", change), "x")
    assert result.errors and result.errors[0].code == "xsd"
