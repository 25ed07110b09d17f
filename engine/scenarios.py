"""Plausible, valid form data for any step, steered towards a chosen gateway exit.

Used by the demo, the scenario tests of every procedure and the benchmarks: given a step and
the flow we want the case to take after it, it finds values for the step's fields that pass
the form's validation and make exactly that gateway exit match.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, Mapping

from . import clock
from .definitions import Flow, ProcedureDefinition, Step
from .errors import InvalidData
from .expressions import ExpressionError, compile_expression
from .forms import Field, valid_id_number, validate
from .lint import sample_values

_NAMED = {
    "members_total": 30, "present": 25, "in_favour": 20, "against": 3, "abstain": 2,
    "approved": True, "signed_off": True, "objection_upheld": False, "objection_count": 0,
}


def _id_number() -> str:
    body = "33020319900101123"
    for check in "0123456789X":
        if valid_id_number(body + check):
            return body + check
    raise AssertionError("unreachable")


def default_value(f: Field) -> Any:
    """A valid, plausible value for a field."""
    if f.name in _NAMED:
        return _NAMED[f.name]
    t = f.type
    if t == "boolean":
        return True
    if t == "integer":
        return int(f.min) if f.min is not None and f.min > 1 else 1 if f.max is None or f.max >= 1 else int(f.max)
    if t in ("decimal", "money"):
        value = Decimal("1000.00")
        if f.min is not None and value < f.min:
            value = Decimal(f.min)
        if f.max is not None and value > f.max:
            value = Decimal(f.max)
        return value
    if t == "date":
        return (clock.now() + timedelta(hours=8)).date().isoformat()
    if t == "datetime":
        return (clock.now() + timedelta(hours=8)).replace(tzinfo=None).isoformat(timespec="minutes")
    if t == "choice":
        return f.options[0].value if f.options else ""
    if t == "person":
        return "张三明"
    if t == "idnumber":
        return _id_number()
    if t == "phone":
        return "13800138000"
    if t == "textarea":
        return f"{f.label}:示例内容。"[: f.max_length or 5000]
    return f"{f.label}(示例)"[: f.max_length or 200]


@dataclass(frozen=True)
class Exit:
    """A gateway exit right after a step: the flow and the gateway it leaves."""

    gateway: str
    flow: Flow
    is_default: bool


def exits_after(d: ProcedureDefinition, step_id: str) -> list[Exit]:
    """Every exit of the chain of exclusive gateways right after a step (following defaults)."""
    result: list[Exit] = []
    step = d.nodes[step_id]
    next_id = d.flows[step.outgoing[0]].target if len(step.outgoing) == 1 else None
    seen: set[str] = set()
    while next_id and next_id not in seen:
        node = d.nodes.get(next_id)
        if node is None or node.type != "exclusiveGateway":
            break
        seen.add(next_id)
        next_id = None
        for fid in node.outgoing:
            is_default = fid == node.default_flow
            result.append(Exit(node.id, d.flows[fid], is_default))
            if is_default:
                next_id = d.flows[fid].target
    return result


def plan_step_data(d: ProcedureDefinition, step_id: str, params: Mapping[str, Any], context: Mapping[str, Any],
                   *, take: str | None = None, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Form data for ``step_id`` that passes validation and leads to exit flow ``take``.

    ``take`` is a flow id among :func:`exits_after` (None: the way straight on, every gateway's
    default). ``context`` is the case data so far (conditions may read earlier fields).
    """
    step: Step = d.steps[step_id]
    own = {f.name: f for f in step.fields}
    exits = exits_after(d, step_id)
    if take is not None and take not in {e.flow.id for e in exits}:
        exits = _exits_of_gateway(d, take)  # a gateway further on that reads this step's fields
    base = {f.name: default_value(f) for f in step.fields}
    base.update(overrides or {})
    wanted, unwanted = _targets(exits, take)
    if take is None:
        # Straight on: no exception exit anywhere downstream may fire on this step's fields.
        unwanted = unwanted + _exception_conditions(d)
    controllable = [c for c in unwanted if compile_expression(c).names & set(own)]
    conditions = [e.flow.condition for e in exits if e.flow.condition]
    checks = conditions + controllable + [c.test for c in step.constraints]
    names = sorted({n for c in checks for n in compile_expression(c).names} & set(own))
    candidates = []
    for n in names:
        values = sample_values(own[n], checks, dict(params))
        values = [base[n]] + [v for v in values if v != base[n]]  # try the plausible value first
        candidates.append(values)
    tried = 0
    for combo in itertools.product(*candidates) if names else [()]:
        tried += 1
        if tried > 50_000:
            break
        data = {**base, **dict(zip(names, combo))}
        scope = {**context, **data}
        if wanted is not None and not _holds(wanted, scope, params):
            continue
        if any(_holds(c, scope, params) for c in controllable):
            continue
        try:
            validate(step.fields, step.constraints, data, context=context, params=params)
        except InvalidData:
            continue
        return data
    raise ValueError(f"no data for step {step_id} takes exit {take}")


def _exception_conditions(d: ProcedureDefinition) -> list[str]:
    """Conditions of every non-default exit of every exclusive gateway of the procedure."""
    return [d.flows[f].condition for n in d.nodes.values() if n.type == "exclusiveGateway"
            for f in n.outgoing if f != n.default_flow and d.flows[f].condition]  # type: ignore[misc]


def _exits_of_gateway(d: ProcedureDefinition, flow_id: str) -> list[Exit]:
    if flow_id not in d.flows:
        raise ValueError(f"unknown flow {flow_id}")
    gateway = d.nodes[d.flows[flow_id].source]
    return [Exit(gateway.id, d.flows[f], f == gateway.default_flow) for f in gateway.outgoing]


def _targets(exits: list[Exit], take: str | None) -> tuple[str | None, list[str]]:
    """The condition that must hold and those that must not, to take ``take``."""
    if take is None:
        return None, [e.flow.condition for e in exits if e.flow.condition]  # type: ignore[misc]
    unwanted: list[str] = []
    for e in exits:
        if e.flow.id == take:
            return e.flow.condition, unwanted
        if e.flow.condition:
            unwanted.append(e.flow.condition)
    raise ValueError(f"{take} is not an exit after this step")


def _holds(condition: str, scope: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    try:
        return bool(compile_expression(condition).evaluate(scope, params))
    except ExpressionError:
        return False


def routes(d: ProcedureDefinition) -> dict[str, dict[str, str]]:
    """For every step, the exits to take (step → flow) so that a case reaches it, shortest first."""
    from collections import deque

    start = d.start_ids[0]
    found: dict[str, dict[str, str]] = {}
    queue: deque[tuple[str, dict[str, str], str | None]] = deque([(start, {}, None)])
    seen: set[tuple[str, str | None]] = set()
    while queue:
        node_id, choices, last_step = queue.popleft()
        if (node_id, last_step) in seen:
            continue
        seen.add((node_id, last_step))
        node = d.nodes[node_id]
        if node.type == "userTask":
            found.setdefault(node_id, choices)
            last_step = node_id
        for fid in node.outgoing:
            flow = d.flows[fid]
            nxt = dict(choices)
            if node.type == "exclusiveGateway" and fid != node.default_flow and last_step is not None:
                if last_step in nxt:
                    continue  # one choice per step visit keeps routes simple
                nxt[last_step] = fid
            queue.append((flow.target, nxt, last_step))
    return found


@dataclass
class WalkResult:
    status: str
    visited: list[str]


def walk(app, case_id: int, users: Mapping[str, str], *, choices: Mapping[str, str] | None = None,
         max_steps: int = 80, tick: Any = None, stop_at: str | None = None, between: Any = None) -> WalkResult:
    """Drive a case to its end: each ready step gets planned data; ``choices`` maps a step to the
    exit to take the first time it is done (later visits go straight on). When only timers are
    left, ``tick()`` is called (it should move the clock past them and fire them). The walk stops
    early when ``stop_at`` is ready; ``between()`` runs before each step (e.g. to move a clock)."""
    from .definitions import ProcedureDefinition as _PD  # noqa: F401  (documentation aid)

    pending = dict(choices or {})
    visited: list[str] = []
    for _ in range(max_steps):
        case = app.show_case(case_id)
        if case["status"] != "running":
            return WalkResult(case["status"], visited)
        ready = case["current_steps"]
        if not ready:
            if not case["timers"] or tick is None:
                return WalkResult(case["status"], visited)
            tick()
            continue
        step_id = ready[0]["step_id"]
        if step_id == stop_at:
            return WalkResult(case["status"], visited)
        if between is not None:
            between()
        d, params, data = _context(app, case_id)
        take = pending.pop(step_id, None)
        payload = plan_step_data(d, step_id, params, data, take=take)
        step = d.steps[step_id]
        kwargs = {}
        user = users.get(step.role or "")
        if user is None and step.proxy:
            user = users.get("committee")
            kwargs = {"on_behalf_of": "张三明", "proxy_reason": "申请人年老行动不便"}
        app.complete(case_id, step_id, user, payload, **kwargs)
        visited.append(step_id)
    raise AssertionError(f"case {case_id} did not end within {max_steps} steps: {visited}")


def _context(app, case_id: int):
    from . import procedures, spiff
    from storage.models import Case

    with app.db.read() as s:
        case = s.get(Case, case_id)
        rt = procedures.runtime(s, case.procedure_version_id)
        wf = spiff.load_state(case.state, rt.spec, rt.subprocess_specs)
        ready = spiff.ready_user_tasks(wf)
        return rt.definition, dict(wf.data.get(spiff.PARAMS_KEY, {})), dict(ready[0].data) if ready else {}
