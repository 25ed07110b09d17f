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
        value = Decimal("1000.00") if t == "money" else Decimal("10")
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
    exits = exits_after(d, step_id)
    if take is not None and take not in {e.flow.id for e in exits}:
        exits = _exits_of_gateway(d, take)  # a gateway further on that reads this step's fields
    wanted, unwanted = _targets(exits, take)
    if take is None:
        # Straight on: no exception exit anywhere downstream may fire on this step's fields.
        unwanted = unwanted + _exception_conditions(d)
    else:
        # Only the chosen exit: no other exception exit on the way may fire on this step's fields.
        later = _later_in_gateway(d, take)
        strict = [c for c in _exception_conditions(d) if c != wanted and c not in later]
        try:
            return _solve(d, step, wanted, unwanted + strict, exits, params, context, overrides)
        except ValueError:
            pass
    return _solve(d, step, wanted, unwanted, exits, params, context, overrides)


def _later_in_gateway(d: ProcedureDefinition, flow_id: str) -> list[str]:
    gateway = d.nodes[d.flows[flow_id].source]
    after = gateway.outgoing[gateway.outgoing.index(flow_id) + 1:]
    return [d.flows[f].condition for f in after if d.flows[f].condition]  # type: ignore[misc]


def _solve(d: ProcedureDefinition, step: Step, wanted: str | None, unwanted: list[str], exits: list[Exit],
           params: Mapping[str, Any], context: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict:
    own = {f.name: f for f in step.fields}
    base = {f.name: default_value(f) for f in step.fields}
    base.update(overrides or {})
    controllable = [c for c in unwanted if compile_expression(c).names & set(own)]
    conditions = [e.flow.condition for e in exits if e.flow.condition] + ([wanted] if wanted else [])
    checks = conditions + controllable + [c.test for c in step.constraints]
    names = sorted({n for c in checks for n in compile_expression(c).names} & set(own))
    candidates = []
    for n in names:
        values = sample_values(own[n], checks, dict(params)) + _related_values(own[n], checks, {**context, **base},
                                                                              params)
        seen_values: list = []
        for v in [base[n], *values]:
            if v not in seen_values:
                seen_values.append(v)
        values = seen_values  # the plausible value first
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
    raise ValueError(f"no data for step {step.id} takes exit {wanted or 'straight on'}")


def _related_values(f: Field, checks: list[str], scope: Mapping[str, Any], params: Mapping[str, Any]) -> list[Any]:
    """Values suggested by comparisons of the field with other expressions (``a == b * c``, ``end > start``)."""
    import ast

    found: list[Any] = []
    for text in checks:
        tree = compile_expression(text).tree
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare) or len(node.comparators) != 1:
                continue
            sides = [node.left, node.comparators[0]]
            for mine, other in (sides, sides[::-1]):
                if isinstance(mine, ast.Name) and mine.id == f.name:
                    try:
                        value = compile_expression(ast.unparse(other)).evaluate(scope, params)
                    except ExpressionError:
                        continue
                    found.extend(_around(f, value))
    if f.type == "date":
        today = (clock.now() + timedelta(hours=8)).date()
        found.extend((today + timedelta(days=n)).isoformat() for n in (0, 30, 365, -30))
    return found


def _around(f: Field, value: Any) -> list[Any]:
    from datetime import date
    from fractions import Fraction

    if f.type == "date" and isinstance(value, str):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return []
        return [value, (day + timedelta(days=1)).isoformat(), (day - timedelta(days=1)).isoformat()]
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, Fraction, float)):
        return [value] if f.type in ("text", "choice") else []
    if f.type == "integer":
        whole = int(value)
        return [whole, whole + 1, max(whole - 1, 0)]
    exact = Decimal(value.numerator) / Decimal(value.denominator) if isinstance(value, Fraction) else Decimal(value)
    exact = exact.quantize(Decimal("0.01"))
    return [exact, exact + 1, max(exact - 1, Decimal(0))]


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


def routes(d: ProcedureDefinition) -> dict[str, tuple[dict[str, str], tuple[str, ...]]]:
    """For every step, the exits to take (deciding step → flow) so that a case reaches it, and the
    steps done on the way.

    A conditional exit is keyed by the step whose form fields its condition reads (the latest
    such step on the way), since that is where the data that takes it is entered.
    """
    from collections import deque

    start = d.start_ids[0]
    found: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {}
    queue: deque[tuple[str, dict[str, str], tuple[str, ...]]] = deque([(start, {}, ())])
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while queue:
        node_id, choices, path = queue.popleft()
        if (node_id, path[-1:]) in seen:
            continue
        seen.add((node_id, path[-1:]))
        node = d.nodes[node_id]
        if node.type == "userTask":
            found.setdefault(node_id, (choices, path))
            path = path + (node_id,)
        for fid in node.outgoing:
            flow = d.flows[fid]
            nxt = dict(choices)
            if node.type == "exclusiveGateway" and fid != node.default_flow:
                decider = deciding_step(d, flow, path)
                if decider is None or decider in nxt:
                    continue  # one choice per step visit keeps routes simple
                nxt[decider] = fid
            queue.append((flow.target, nxt, path))
    return found


def choices_for_exit(d: ProcedureDefinition, flow_id: str) -> dict[str, str] | None:
    """Exits to take so that a case reaches the gateway of ``flow_id`` and leaves it by that flow."""
    gateway = d.flows[flow_id].source
    reach = routes(d)
    for step_id, (choices, path) in reach.items():
        between = _steps_between(d, step_id, gateway)
        if between is None:
            continue
        decider = deciding_step(d, d.flows[flow_id], path + (step_id,) + between)
        if decider is None or decider in choices:
            continue
        return {**choices, decider: flow_id}
    return None


def _steps_between(d: ProcedureDefinition, step_id: str, gateway_id: str) -> tuple[str, ...] | None:
    """Supervision steps passed going straight on from a step to a gateway, or None if it is not reached."""
    passed: list[str] = []
    node = d.nodes[step_id]
    seen: set[str] = set()
    while len(node.outgoing) >= 1 and node.id not in seen:
        seen.add(node.id)
        nxt_id = d.flows[node.default_flow].target if node.default_flow else d.flows[node.outgoing[0]].target
        if node.type == "exclusiveGateway" and gateway_id in {d.flows[f].target for f in node.outgoing}:
            nxt_id = gateway_id
        if nxt_id == gateway_id:
            return tuple(passed)
        node = d.nodes[nxt_id]
        if node.type == "userTask":
            if node.id.endswith("_supervision") or node.id.endswith("_objections"):
                passed.append(node.id)
            else:
                return None
        elif node.type != "exclusiveGateway" and node.timer is None:
            return None
    return None


def deciding_step(d: ProcedureDefinition, flow: Flow, path: tuple[str, ...]) -> str | None:
    """The latest step on ``path`` whose fields the flow's condition reads."""
    if not flow.condition:
        return path[-1] if path else None
    names = compile_expression(flow.condition).names
    for step_id in reversed(path):
        if {f.name for f in d.steps[step_id].fields} & names:
            return step_id
    return None


def default_outcome(d: ProcedureDefinition, node_id: str) -> str | None:
    """The outcome of the end reached from a node by going straight on (None if it loops)."""
    seen: set[str] = set()
    while node_id not in seen:
        seen.add(node_id)
        node = d.nodes[node_id]
        if node.type == "endEvent":
            return node.outcome
        if node.type == "exclusiveGateway" and node.default_flow:
            node_id = d.flows[node.default_flow].target
        elif node.outgoing:
            node_id = d.flows[node.outgoing[0]].target
        else:
            return None
    return None


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
