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
