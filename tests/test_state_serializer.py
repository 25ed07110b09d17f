"""The stored state of a case: Xiaowei's faster serializer writes and reads exactly what SpiffWorkflow's
own converters do, for the values forms produce (Decimal, Fraction, times, lists, Chinese text)
and for values orjson cannot carry (an integer beyond 64 bits)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from lxml import etree
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import TaskConverter
from SpiffWorkflow.task import Task

from engine.core import spiff

ROOT = Path(__file__).resolve().parent.parent
VALUES = {"amount": Decimal("80000.50"), "quorum": Fraction(2, 3), "meeting_date": "2026-12-01",
          "at": datetime(2026, 12, 1, 9, 30), "names": ["张三", "李四"], "nested": {"a": [1, {"b": "乙"}]},
          "is_major": True, "nothing": None, "ratio": 0.1,
          # what V-DEC-01's gateways read on the way to the party meeting
          "needs_township_review": False, "opinions_summary": "同意", "matter_type": "project"}


def _workflow(extra: dict):
    root = etree.fromstring((ROOT / "processes" / "V-DEC-01.bpmn").read_bytes())
    spec, subs = spiff.parse_process(root, "V-DEC-01")
    wf = spiff.new_workflow(spec, subs, {"major_amount": Decimal("50000"), "party_quorum": Fraction(2, 3),
                                         "party_pass": Fraction(1, 2), "vrep_quorum": Fraction(2, 3),
                                         "vrep_pass": Fraction(1, 2), "decision_disclosure_days": 7})
    spiff.run_engine(wf)
    for _ in range(3):  # a few completed steps: tasks whose data is a delta against their parent
        task = spiff.ready_user_tasks(wf)[0]
        task.data.update({**VALUES, **extra, task.task_spec.bpmn_id + ".done": True})
        task.run()
        spiff.run_engine(wf)
    return wf, spec, subs


def _stock_load(state: str, spec, subs):
    """The same JSON read with SpiffWorkflow's own task converter (what the faster one replaces)."""
    config = dict(spiff.SPIFF_CONFIG)
    config[spiff.BpmnWorkflow] = spiff._SpeclessWorkflowConverter
    config[Task] = TaskConverter
    registry = BpmnWorkflowSerializer.configure(config)
    registry.register(Decimal, lambda v: {"value": str(v)}, lambda d: Decimal(d["value"]), "Decimal")
    registry.register(Fraction, lambda v: {"value": str(v)}, lambda d: Fraction(d["value"]), "Fraction")
    serializer = BpmnWorkflowSerializer(registry)
    dct = json.loads(state)
    dct["spec"], dct["subprocess_specs"] = spec, subs
    return serializer.from_dict(dct)


def _tasks(wf) -> dict:
    return {str(t.id): (t.task_spec.name, t.state, str(t._parent), [str(c) for c in t._children], t.data,
                        t.internal_data) for t in wf.get_tasks()}


def test_state_round_trip_equals_spiffworkflow_and_the_standard_library():
    wf, spec, subs = _workflow({})
    state = spiff.dump_state(wf)
    as_stdlib = json.dumps(json.loads(state), separators=(",", ":"), ensure_ascii=False)
    assert state == as_stdlib  # orjson wrote the standard library's compact JSON
    loaded = spiff.load_state(state, spec, subs)
    assert _tasks(loaded) == _tasks(wf) == _tasks(_stock_load(state, spec, subs))
    assert loaded.data == wf.data
    assert spiff.dump_state(loaded) == state
    task = next(t for t in loaded.get_tasks() if t.data.get("amount") is not None)
    assert isinstance(task.data["amount"], Decimal) and isinstance(task.data["quorum"], Fraction)
    assert isinstance(task.data["at"], datetime)
    # a child's data is its own copy: changing it leaves the parent's as it was
    child = next(t for t in loaded.get_tasks() if t.parent is not None and "nested" in t.parent.data)
    child.data["nested"]["a"] = []
    assert child.parent.data["nested"]["a"] == [1, {"b": "乙"}]


def test_an_integer_beyond_64_bits_survives_exactly():
    big = 123456789012345678901234567890
    wf, spec, subs = _workflow({"count": big})
    state = spiff.dump_state(wf)  # orjson refuses it: the standard library writes this state
    loaded = spiff.load_state(state, spec, subs)
    values = [t.data["count"] for t in loaded.get_tasks() if "count" in t.data]
    assert values and all(v == big and isinstance(v, int) for v in values)


def test_task_ids_parse_as_uuid_does():
    from uuid import UUID, uuid4

    from engine.core.spiff import parse_uuid

    for value in [uuid4() for _ in range(50)] + [UUID(int=0), UUID(int=2**128 - 1)]:
        parsed = parse_uuid(str(value))
        assert parsed == value and hash(parsed) == hash(value) and str(parsed) == str(value)
        assert isinstance(parsed, UUID) and parsed.version == value.version
    assert parse_uuid("{12345678-1234-5678-1234-567812345678}") == UUID("12345678-1234-5678-1234-567812345678")
    with pytest.raises(ValueError):
        parse_uuid("12345678-1234-5678-1234-56781234567g")


def _full_context(xw, case_id: int):
    """What ``ready_data`` stands for: the whole workflow restored, its ready user tasks' data."""
    from engine.core import procedures
    from storage.models import Case

    with xw.db.read() as s:
        case = s.get(Case, case_id)
        rt = procedures.runtime(s, case.procedure_version_id)
        wf = spiff.load_state(case.state, rt.spec, rt.subprocess_specs)
        return case.state, rt.spec, wf.data, [(t.task_spec.name, t.data) for t in spiff.ready_user_tasks(wf)]


@pytest.mark.parametrize("procedure", ["V-DEC-01", "B-PUR-02", "B-FIN-01", "B-PUR-01", "B-PRJ-01", "B-AST-01", "V-AST-01"])
def test_ready_data_read_from_the_state_equals_the_restored_workflow(xw, people, procedure):
    """At every step of cases driven to their end (returns included where a step sends the case back),
    the ready steps' data and the workflow data read straight from the stored state are exactly what
    restoring the workflow gives; scenarios.case_context (the benchmarks' planner input) reads them so."""
    from engine.services.scenarios import case_context, plan_step_data

    starters = [r for r in ("party_branch", "handler", "committee", "director", "joint_meeting", "applicant",
                            "collective_board", "bookkeeper", "asset_keeper") if r in people]
    case_id = None
    for role in starters:
        try:
            case_id = xw.start_case(procedure, "DONGAO", people[role])
            break
        except Exception:  # noqa: BLE001 - not this role's procedure
            continue
    assert case_id is not None
    steps = 0
    while True:
        state, spec, wf_data, ready = _full_context(xw, case_id)
        assert spiff.ready_data(state, spec) == (wf_data, ready)
        if not ready:
            break
        d, params, data = case_context(xw, case_id)
        assert params == wf_data[spiff.PARAMS_KEY] and data == ready[0][1]
        step_id = ready[0][0]
        step = d.steps[step_id]
        user = people.get(step.role or "") or people["committee"]
        kwargs = {"on_behalf_of": "张三明", "proxy_reason": "申请人年老行动不便"} if step.proxy else {}
        if step.evidence_required:
            from engine.services.scenarios import sample_evidence

            kwargs["attachments"] = sample_evidence(xw, step, user)
        xw.complete(case_id, step_id, user, plan_step_data(d, step_id, params, data), **kwargs)
        steps += 1
    assert steps >= 3


def test_ready_data_leaves_a_state_with_running_subprocesses_to_a_full_restore(xw, people):
    """Tasks of a running subprocess are stored apart from the top-level ones: ``ready_data`` says so
    (None) instead of missing their ready steps, and case_context restores such a workflow whole."""
    import json

    case_id = xw.start_case("V-DEC-01", "DONGAO", people["party_branch"])
    state, spec, wf_data, ready = _full_context(xw, case_id)
    assert spiff.ready_data(state, spec) == (wf_data, ready)
    dct = json.loads(state)
    dct["subprocesses"] = {"00000000-0000-0000-0000-000000000001": {"tasks": {}}}
    assert spiff.ready_data(json.dumps(dct), spec) is None
