"""Replay a case's events and compare the result with what the database says now.

The hash chain proves the events were not edited; it says nothing about the rows beside it. A
``UPDATE case_instance SET status = 'completed'``, a deleted ``work_item`` or a moved ``timer_due``
would pass the chain check. Every change of a case is one event that names what it opened (steps,
timers), what it completed, fired or closed, and how the case ended; replaying them gives the status,
the open steps with their due times and the waiting timers the case must have. ``xiaowei audit
verify`` compares that with ``case_instance``, ``work_item``, ``timer_due`` and the stored
SpiffWorkflow state, and with the case header (procedure, version, village, tracking code).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from storage.models import Case, Organization, ProcedureVersion, TimerDue, WorkItem

CLOSING = {"case_closed", "case_cancelled"}


def expected(events: list) -> dict[str, Any]:
    """What the events say the case is now: status, open steps (with due times) and timers."""
    status = "running"
    steps: Counter = Counter()
    step_due: dict[str, list] = {}
    timers: Counter = Counter()
    timer_due: dict[str, list] = {}
    started: dict | None = None
    version = None
    for ev in events:
        data = _data(ev)
        t = ev.type
        if t == "case_started":
            started = data
            version = data.get("procedure_version")
        elif t == "case_migrated":
            version = data.get("to_version", version)
        if t == "step_completed" and steps[data.get("step")] > 0:
            steps[data.get("step")] -= 1
            _drop(step_due, data.get("step"))
        if t == "timer_fired" and timers[data.get("node")] > 0:
            timers[data.get("node")] -= 1
            _drop(timer_due, data.get("node"))
        for step in data.get("closed") or []:
            if steps[step] > 0:
                steps[step] -= 1
                _drop(step_due, step)
        for node in data.get("timers_closed") or []:
            if timers[node] > 0:
                timers[node] -= 1
                _drop(timer_due, node)
        if t in CLOSING:
            status = "cancelled" if t == "case_cancelled" else data.get("status") or "completed"
            steps.clear()
            step_due.clear()
            timers.clear()
            timer_due.clear()
            continue
        if "opened" not in data:  # only a change of the case (engine.cases._save) opens steps and timers
            continue
        for item in data.get("opened") or []:
            if isinstance(item, dict) and item.get("step"):
                steps[item["step"]] += 1
                step_due.setdefault(item["step"], []).append(item.get("due_at"))
        for item in data.get("timers") or []:
            if isinstance(item, dict) and item.get("node"):
                timers[item["node"]] += 1
                timer_due.setdefault(item["node"], []).append(item.get("due_at"))
    return {"status": status, "steps": +steps, "step_due": step_due, "timers": +timers, "timer_due": timer_due,
            "started": started, "version": version}


def _data(ev) -> dict:
    if isinstance(ev, dict):
        return ev.get("data") or {}
    try:
        value = json.loads(ev.data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _drop(dues: dict[str, list], key) -> None:
    if dues.get(key):
        dues[key].pop(0)


def compare(session: Session, case: Case, events: list) -> list[str]:
    """Problems where the stored case disagrees with its replayed events (one case; ``audit verify``
    of every case loads the rows in batches and calls :func:`compare_rows`)."""
    org = session.get(Organization, case.org_id)
    version = session.get(ProcedureVersion, case.procedure_version_id)
    items = session.execute(select(WorkItem.step_id, WorkItem.due_at).where(WorkItem.case_id == case.id)).all()
    timer_rows = session.execute(select(TimerDue.node_id, TimerDue.due_at).where(TimerDue.case_id == case.id)).all()
    return compare_rows(session, case, events, items=items, timer_rows=timer_rows, state=case.state,
                        org_code=org.code if org else None, version_number=version.version if version else None)


def compare_rows(session: Session, case, events: list, *, items, timer_rows, state: str, org_code: str | None,
                 version_number: int | None) -> list[str]:
    """:func:`compare` over rows already loaded: ``case`` has id, status, closed_at, procedure_id,
    procedure_version_id and tracking_code; ``items`` (step_id, due_at); ``timer_rows`` (node_id, due_at)."""
    want = expected(events)
    problems: list[str] = []
    if case.status != want["status"]:
        problems.append(f"replay: the events say the case is {want['status']} but it is stored as {case.status}: "
                        "its status was changed outside the engine")
    if (case.closed_at is None) != (want["status"] == "running"):
        problems.append("replay: the case's closing time disagrees with its events")
    started = want["started"] or {}
    for label, stored, recorded in (
            ("procedure", case.procedure_id, started.get("procedure_id")),
            ("organization", org_code, started.get("org")),
            ("tracking code", case.tracking_code, started.get("tracking_code")),
            ("procedure version", version_number, want["version"])):
        if recorded is not None and stored != recorded:
            problems.append(f"replay: the case's {label} is {stored} but its events say {recorded}: changed outside "
                            "the engine")
    stored_steps = Counter(step for step, _ in items)
    if stored_steps != want["steps"]:
        problems.append(f"replay: the open steps should be {_show(want['steps'])} but the work items are "
                        f"{_show(stored_steps)}: work items were changed outside the engine")
    else:
        stored_due: dict[str, list] = {}
        for step, due in items:
            stored_due.setdefault(step, []).append(audit.iso(due) if due else None)
        for step, dues in want["step_due"].items():
            if sorted(map(str, dues)) != sorted(map(str, stored_due.get(step, []))):
                problems.append(f"replay: the due time of step {step} was changed outside the engine")
    stored_timers = Counter(node for node, _ in timer_rows)
    if stored_timers != want["timers"]:
        problems.append(f"replay: the waiting timers should be {_show(want['timers'])} but are "
                        f"{_show(stored_timers)}: timers were changed outside the engine")
    else:
        stored_tdue: dict[str, list] = {}
        for node, due in timer_rows:
            stored_tdue.setdefault(node, []).append(audit.iso(due))
        for node, dues in want["timer_due"].items():
            if sorted(map(str, dues)) != sorted(map(str, stored_tdue.get(node, []))):
                problems.append(f"replay: the deadline of timer {node} was changed outside the engine")
    problems.extend(_compare_state(session, case, state, want))
    return problems


READY, WAITING = 16, 8  # SpiffWorkflow 3.2.0's TaskState values in a serialized workflow


def open_in_state(state: str, definition) -> tuple[Counter, Counter]:
    """The ready steps and waiting timers (with a deadline) of a stored SpiffWorkflow state, read from
    its JSON (what :func:`engine.spiff.open_tasks` gives, without rebuilding the workflow)."""
    from .spiff import timer_deadline

    data = json.loads(state)
    steps: Counter = Counter()
    timers: Counter = Counter()
    workflows = [data, *(data.get("subprocesses") or {}).values()]
    for workflow in workflows:
        for task in (workflow.get("tasks") or {}).values():
            spec, status = task.get("task_spec"), task.get("state")
            if status == READY and spec in definition.steps:
                steps[spec] += 1
            elif status == WAITING:
                node = definition.nodes.get(spec)
                value = (task.get("internal_data") or {}).get("event_value")
                if node is not None and node.timer is not None and isinstance(value, str):
                    if timer_deadline(value) is None:
                        continue
                    timers[spec] += 1
    return steps, timers


def _compare_state(session: Session, case, state: str, want: dict) -> list[str]:
    from . import procedures

    if case.status != "running":
        return []
    try:
        rt = procedures.runtime(session, case.procedure_version_id)
        steps, timers = open_in_state(state, rt.definition)
    except Exception as exc:  # noqa: BLE001 - an unreadable state is itself the finding
        return [f"replay: the stored engine state cannot be read ({type(exc).__name__}): changed outside the engine"]
    problems = []
    if steps != want["steps"]:
        problems.append(f"replay: the stored engine state has the steps {_show(steps)} open, the events "
                        f"{_show(want['steps'])}: the state was changed outside the engine")
    if timers != want["timers"]:
        problems.append(f"replay: the stored engine state has the timers {_show(timers)} waiting, the events "
                        f"{_show(want['timers'])}: the state was changed outside the engine")
    return problems


def _show(counter: Counter) -> str:
    items = sorted(counter.elements())
    return "(none)" if not items else ", ".join(items)
