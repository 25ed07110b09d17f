"""The whole library: the 54 handbook procedures in 9 categories plus the township's own (T-SUP-01,
码上举报), and data-driven scenarios for every procedure
walking the main path and every exception exit of every gateway, on a real database."""

from collections import Counter
from pathlib import Path

import pytest

from engine.core import catalogue
from engine.core.lint import lint_file
from engine.services.scenarios import choices_for_exit, default_outcome, walk

from conftest import staff_at

PROCESSES = Path(__file__).resolve().parent.parent / "processes"
DEFINITIONS = {p.stem: lint_file(p).definition for p in sorted(PROCESSES.glob("*.bpmn"))}


def test_fifty_four_procedures_in_nine_categories():
    handbook = {pid: d for pid, d in DEFINITIONS.items() if "-SUP-" not in pid}
    assert len(handbook) == 54
    # supervision's own: 码上举报 (township), the monthly checklist and the grade notice (at the village)
    assert sorted(set(DEFINITIONS) - set(handbook)) == ["B-SUP-01", "B-SUP-02", "T-SUP-01"]
    categories = Counter(d.category for d in handbook.values())
    assert set(categories) == set(catalogue.categories())
    editions = Counter(d.edition for d in DEFINITIONS.values())
    assert set(editions) == {"village", "community", "both", "township"}
    for d in DEFINITIONS.values():
        assert d.legal_basis and d.name and d.name_en and d.handling_subject, d.id
        for step in d.steps.values():
            assert step.fields, f"{d.id}/{step.id} has no form"
            assert step.instructions or step.id.endswith(("_objections", "_supervision")), f"{d.id}/{step.id}"


def org_for(d) -> str:
    return {"community": "HEPING", "township": "SFZ"}.get(d.edition, "DONGAO")


def scenario_ids():
    cases = []
    for pid, d in DEFINITIONS.items():
        cases.append(pytest.param(pid, None, None, id=f"{pid}-main"))
        for node in d.nodes.values():
            if node.type != "exclusiveGateway":
                continue
            for fid in node.outgoing:
                if fid == node.default_flow:
                    continue
                cases.append(pytest.param(pid, node.id, fid, id=f"{pid}-{node.id}-{fid}"))
    return cases


@pytest.mark.parametrize("pid, gateway_id, flow_id", scenario_ids())
def test_scenario(xw, people, frozen, pid, gateway_id, flow_id):
    d = DEFINITIONS[pid]
    org = org_for(d)
    users = people if org == "DONGAO" else staff_at(xw, org, people)

    def tick():
        frozen.advance(days=40)
        xw.tick()

    starter = users[d.steps[_first_step(d)].role]
    case_id = xw.start_case(pid, org, starter if not d.steps[_first_step(d)].proxy else users["committee"])
    if flow_id is None:
        result = walk(xw, case_id, users, tick=tick)
        assert result.status == "completed", result.visited
        for kind, required in d.requires.items():
            if required:
                assert any(d.steps[s].kind == kind for s in result.visited), f"no {kind} step visited"
    else:
        chosen = choices_for_exit(d, flow_id)
        if chosen is None:
            pytest.skip(f"no route drives data into {gateway_id}")
        result = walk(xw, case_id, users, choices=chosen, tick=tick)
        history = xw.show_case(case_id)["history"]
        taken = [e for e in history if e["type"] == "gateway_decided" and e["data"]["flow"] == flow_id]
        assert taken, f"{flow_id} not taken; visited {result.visited}"
        expected = default_outcome(d, d.flows[flow_id].target)
        if expected is not None:
            assert result.status == expected, result.visited
        else:
            assert result.status in ("completed", "rejected", "terminated"), result.visited
    assert all(r.ok for r in xw.verify(case_id))


def _first_step(d) -> str:
    start = d.nodes[d.start_ids[0]]
    node = d.nodes[d.flows[start.outgoing[0]].target]
    while node.type != "userTask":
        node = d.nodes[d.flows[node.default_flow or node.outgoing[0]].target]
    return node.id
