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

from engine.core import clock
from engine.core.definitions import Flow, ProcedureDefinition, Step
from engine.core.errors import InvalidData
from engine.core.expressions import ExpressionError, compile_expression
from engine.core.forms import Field, valid_id_number, validate
from engine.core.lint import sample_values

_NAMED = {
    "members_total": 30, "present": 25, "in_favour": 20, "against": 3, "abstain": 2,
    "excluded": 0, "excluded_basis": "无", "written_total": 0, "written_in_favour": 0, "count_basis": "persons",
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
                   *, take: str | None = None, overrides: Mapping[str, Any] | None = None,
                   ahead: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Form data for ``step_id`` that passes validation and leads to exit flow ``take``.

    ``take`` is a flow id among :func:`exits_after` (None: the way straight on, every gateway's
    default), or of a gateway further on whose condition reads this step's fields. ``context``
    is the case data so far (conditions may read earlier fields). ``ahead`` maps later steps to
    the exits they are still to take: among valid data, the planner prefers values with which
    those later steps can still take them (and later steps that go straight on, can), since a
    later step's condition or constraint may read this step's fields.
    """
    step: Step = d.steps[step_id]
    exits = exits_after(d, step_id)
    if take is not None and take not in {e.flow.id for e in exits}:
        exits = _exits_of_gateway(d, take)  # a gateway further on that reads this step's fields
    wanted, unwanted = _targets(exits, take)
    if take is None:
        # Straight on: no exception exit anywhere downstream may fire on this step's fields.
        attempts = [unwanted + _exception_conditions(d), unwanted]
    else:
        # Only the chosen exit: no other exception exit on the way may fire on this step's fields.
        later = _later_in_gateway(d, take)
        strict = [c for c in _exception_conditions(d) if c != wanted and c not in later]
        attempts = [unwanted + strict, unwanted]
    needs = _needs_ahead(d, step_id, ahead or {})
    for avoid in attempts:
        data = _solve(d, step, wanted, avoid, exits, params, context, overrides, needs)
        if data is not None:
            return data
    raise ValueError(f"no data for step {step.id} takes exit {wanted or 'straight on'}")


def _later_in_gateway(d: ProcedureDefinition, flow_id: str) -> list[str]:
    gateway = d.nodes[d.flows[flow_id].source]
    after = gateway.outgoing[gateway.outgoing.index(flow_id) + 1:]
    return [d.flows[f].condition for f in after if d.flows[f].condition]  # type: ignore[misc]


_SEARCH_BUDGET = 30_000   # combinations of values tried for one step
_AHEAD_BUDGET = 4_000     # ... for checking that a later step can still take its exit
_AHEAD_CANDIDATES = 80    # valid data sets of this step weighed against the later steps


@dataclass(frozen=True)
class _Need:
    """A later step and the exit it should still be able to take (None: straight on)."""

    step_id: str
    take: str | None
    weight: int
    checks: tuple[str, ...]


def _needs_ahead(d: ProcedureDefinition, step_id: str, ahead: Mapping[str, str]) -> list[_Need]:
    own = {f.name for f in d.steps[step_id].fields}
    needs: list[_Need] = []
    for later, flow_id in ahead.items():
        if later == step_id or later not in d.steps:
            continue
        checks = _step_checks(d, later, flow_id)
        if any(compile_expression(c).names & own for c in checks):
            needs.append(_Need(later, flow_id, 1000, tuple(checks)))
    for later in _later_steps(d, step_id):
        if later in ahead:
            continue
        checks = _step_checks(d, later, None)
        if any(compile_expression(c).names & own for c in checks):
            needs.append(_Need(later, None, 1, tuple(checks)))
    return needs


def _step_checks(d: ProcedureDefinition, step_id: str, take: str | None) -> list[str]:
    """The expressions deciding whether ``step_id`` can be done so that it takes ``take``."""
    texts = [c.test for c in d.steps[step_id].constraints]
    texts += [e.flow.condition for e in exits_after(d, step_id) if e.flow.condition]
    if take is not None and take in d.flows:
        texts += [d.flows[f].condition for f in d.nodes[d.flows[take].source].outgoing
                  if d.flows[f].condition]
    return list(dict.fromkeys(texts))


_LATER: dict[tuple[str, str, str], list[str]] = {}


def _later_steps(d: ProcedureDefinition, step_id: str) -> list[str]:
    """Steps listed after ``step_id`` that can be reached from it."""
    key = (d.id, d.content_hash, step_id)
    if key not in _LATER:
        reached: set[str] = set()
        stack = [step_id]
        while stack:
            node = d.nodes[stack.pop()]
            for fid in node.outgoing:
                target = d.flows[fid].target
                if target not in reached:
                    reached.add(target)
                    stack.append(target)
        order = list(d.steps)
        _LATER[key] = [s for s in order[order.index(step_id) + 1:] if s in reached]
    return _LATER[key]


_ASSUMED: dict[tuple[str, str, Any], dict[str, Any]] = {}


def _assumed(d: ProcedureDefinition) -> dict[str, Any]:
    """Plausible values of every field of the procedure, for reading fields not yet entered."""
    key = (d.id, d.content_hash, clock.now().date())
    if key not in _ASSUMED:
        _ASSUMED[key] = {name: default_value(f) for name, f in d.fields_by_name().items()}
    return _ASSUMED[key]


def _solve(d: ProcedureDefinition, step: Step, wanted: str | None, unwanted: list[str], exits: list[Exit],
           params: Mapping[str, Any], context: Mapping[str, Any], overrides: Mapping[str, Any] | None,
           needs: list[_Need], budget: int = _SEARCH_BUDGET) -> dict | None:
    """Valid data taking ``wanted`` and none of ``unwanted``; the best for ``needs``; None if none found."""
    best: tuple[int, dict] | None = None
    full = sum(n.weight for n in needs)
    seen = 0
    for data in _valid_data(d, step, wanted, unwanted, exits, params, context, overrides, needs, budget):
        if not needs:
            return data
        scope = {**_assumed(d), **context, **data}
        score = sum(n.weight for n in needs if _possible(d, n, params, scope))
        if score == full:
            return data
        if best is None or score > best[0]:
            best = (score, data)
        seen += 1
        if seen >= _AHEAD_CANDIDATES:
            break
    return best[1] if best else None


def _possible(d: ProcedureDefinition, need: _Need, params: Mapping[str, Any], scope: Mapping[str, Any]) -> bool:
    step = d.steps[need.step_id]
    exits = exits_after(d, need.step_id)
    if need.take is not None and need.take not in {e.flow.id for e in exits}:
        exits = _exits_of_gateway(d, need.take)
    wanted, unwanted = _targets(exits, need.take)
    for _ in _valid_data(d, step, wanted, unwanted, exits, params, scope, None, [], _AHEAD_BUDGET):
        return True
    return False


def _valid_data(d: ProcedureDefinition, step: Step, wanted: str | None, unwanted: list[str], exits: list[Exit],
                params: Mapping[str, Any], context: Mapping[str, Any], overrides: Mapping[str, Any] | None,
                needs: list[_Need], budget: int):
    """Valid data sets for the step that take ``wanted`` and none of ``unwanted``, the plausible
    defaults first and then those that change as few fields as possible."""
    own = {f.name: f for f in step.fields}
    base = {f.name: default_value(f) for f in step.fields}
    base.update(overrides or {})
    controllable = [c for c in unwanted if compile_expression(c).names & set(own)]
    conditions = [e.flow.condition for e in exits if e.flow.condition] + ([wanted] if wanted else [])
    constraints = [c.test for c in step.constraints]
    ahead_checks = [c for n in needs for c in n.checks]
    checks = list(dict.fromkeys(conditions + controllable + constraints + ahead_checks))
    names = sorted({n for c in checks for n in compile_expression(c).names} & set(own))
    solving_scope = {**_assumed(d), **context, **base}
    candidates = []
    for n in names:
        values = [base[n], *_solved_values(own[n], checks, solving_scope, params),
                  *sample_values(own[n], checks, dict(params))]
        candidates.append(list(dict.fromkeys(values)))
    # First settle the fields the exits read, then search around that for valid data.
    deciding = sorted({n for c in ([wanted] if wanted else []) + controllable
                       for n in compile_expression(c).names} & set(own))
    if deciding:
        index = [names.index(n) for n in deciding]
        for n, changed in enumerate(_nearest_combos(deciding, [candidates[i] for i in index])):
            scope = {**context, **base, **changed}
            if (wanted is None or _holds(wanted, scope, params)) and not any(
                    _holds(c, scope, params) for c in controllable):
                for name, value in changed.items():
                    i = names.index(name)
                    candidates[i] = [value] + [v for v in candidates[i] if v != value]
                    base[name] = value
                break
            if n > budget // 4:
                break
    equalities = _equalities(constraints + ([wanted] if wanted else []), set(own))
    tried = 0
    for changed in _nearest_combos(names, candidates):
        tried += 1
        if tried > budget:
            return
        data = {**base, **changed}
        for attempt in (data, _repaired(data, changed, equalities, own, context, params)):
            if attempt is None:
                continue
            scope = {**context, **attempt}
            if wanted is not None and not _holds(wanted, scope, params):
                continue
            if any(_holds(c, scope, params) for c in controllable):
                continue
            try:
                validate(step.fields, step.constraints, attempt, context=context, params=params)
            except InvalidData:
                continue
            yield attempt
            break


def _nearest_combos(names: list[str], candidates: list[list[Any]]):
    """Assignments changing 0, 1, 2, ... fields from their first (plausible) candidate."""
    yield {}
    for k in range(1, len(names) + 1):
        for subset in itertools.combinations(range(len(names)), k):
            for values in itertools.product(*(candidates[i][1:] for i in subset)):
                yield {names[i]: v for i, v in zip(subset, values)}


def _equalities(texts: list[str], own: set[str]) -> list[tuple[str, Any]]:
    """``(field, comparison)`` for each ``==`` comparison in ``texts`` that reads a field of the step."""
    import ast

    found = []
    for text in texts:
        for node in ast.walk(compile_expression(text).tree):
            if isinstance(node, ast.Compare) and len(node.ops) == 1 and (
                    isinstance(node.ops[0], ast.Eq) or _absolute_difference(node) is not None):
                names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} & own
                for name in sorted(names):
                    found.append((name, node))
    return found


def _repaired(data: dict, changed: Mapping[str, Any], equalities: list[tuple[str, Any]], own: Mapping[str, Field],
              context: Mapping[str, Any], params: Mapping[str, Any]) -> dict | None:
    """``data`` with fields not chosen outright solved from equalities (``a + b == total``)."""
    fixed = dict(data)
    touched = False
    for name, node in equalities:
        if name in changed or own[name].type not in ("integer", "decimal", "money"):
            continue
        roots = _roots(own[name], node, {**context, **fixed}, params)
        if roots:
            value = _typed(own[name], roots[0])
            if value is not None and value != fixed[name]:
                fixed[name] = value
                touched = True
    return fixed if touched else None


def _roots(f: Field, node: Any, scope: Mapping[str, Any], params: Mapping[str, Any]) -> list[Any]:
    """Where ``left - right`` of a comparison is zero, taken as linear in field ``f``."""
    import ast
    from fractions import Fraction

    if not isinstance(node, ast.Compare) or len(node.comparators) != 1:
        return []
    if f.name not in {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}:
        return []
    small = _absolute_difference(node)
    text = ast.unparse(small) if small is not None else \
        f"({ast.unparse(node.left)}) - ({ast.unparse(node.comparators[0])})"
    try:
        diff = compile_expression(text)
        g0, g1 = (diff.evaluate({**scope, f.name: v}, params) for v in (0, 1))
        g0, g1 = Fraction(g0), Fraction(g1)
    except (ExpressionError, TypeError, ValueError, ArithmeticError):
        return []
    if g1 == g0:
        return []
    return [-g0 / (g1 - g0)]


def _absolute_difference(node: Any) -> Any:
    """``x`` of a comparison ``abs(x) < tolerance`` (an equality up to rounding), else None."""
    import ast

    left = node.left
    if (isinstance(node.ops[0], (ast.Lt, ast.LtE)) and isinstance(left, ast.Call)
            and isinstance(left.func, ast.Name) and left.func.id == "abs" and len(left.args) == 1):
        return left.args[0]
    return None


def _typed(f: Field, value: Any) -> Any:
    from fractions import Fraction

    if isinstance(value, Fraction):
        if f.type == "integer":
            return value.numerator // value.denominator if value.denominator == 1 else None
        exact = Decimal(value.numerator) / Decimal(value.denominator)
        rounded = exact.quantize(Decimal("0.01"))
        return rounded if rounded == exact or f.type != "money" else None
    return value


def _solved_values(f: Field, checks: list[str], scope: Mapping[str, Any], params: Mapping[str, Any]) -> list[Any]:
    """Values suggested by comparisons of the field with other expressions (``a == b * c``,
    ``x + y == total``, ``end > start``): the boundary and its neighbours."""
    import ast

    found: list[Any] = []
    for text in checks:
        for node in ast.walk(compile_expression(text).tree):
            if not isinstance(node, ast.Compare) or len(node.comparators) != 1:
                continue
            if f.type in ("integer", "decimal", "money"):
                for root in _roots(f, node, scope, params):
                    found.extend(_around(f, root))
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
    import math
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
    exact = Fraction(value)
    if f.type == "integer":
        low = math.floor(exact)
        return [n for n in (low, low + 1, low - 1, low + 2) if n >= 0]
    cents = Decimal(math.floor(exact * 100)) / 100
    steps = (Decimal(0), Decimal("0.01"), Decimal("-0.01"), Decimal(1), Decimal(-1))
    return [v for v in dict.fromkeys(cents + s for s in steps) if v >= 0]


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
            if e.is_default:  # the default: every condition of its gateway must fail
                return None, unwanted + [x.flow.condition for x in exits
                                         if x.gateway == e.gateway and x.flow.condition
                                         and x.flow.condition not in unwanted]
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
    steps done on the way (the first route found; :func:`candidate_routes` gives them all).
    """
    found: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {}
    for node_id, choices, path in _paths(d):
        if d.nodes[node_id].type == "userTask":
            found.setdefault(node_id, (choices, path))
    return found


def _paths(d: ProcedureDefinition, limit: int = 20_000):
    """Simple paths from the start, shortest first: (node reached, choices on the way, steps done
    before it). A conditional exit is keyed by the step whose form fields its condition reads (the
    latest such step on the way), since that is where the data that takes it is entered; a path
    needing two choices of one step is left out."""
    from collections import deque

    start = d.start_ids[0]
    queue: deque[tuple[str, dict[str, str], tuple[str, ...], frozenset[str]]] = deque(
        [(start, {}, (), frozenset([start]))])
    popped = 0
    while queue and popped < limit:
        node_id, choices, path, on_path = queue.popleft()
        popped += 1
        yield node_id, choices, path
        node = d.nodes[node_id]
        if node.type == "userTask":
            path = path + (node_id,)
        for fid in node.outgoing:
            flow = d.flows[fid]
            if flow.target in on_path:
                continue
            nxt = dict(choices)
            if node.type == "exclusiveGateway" and fid != node.default_flow:
                decider = deciding_step(d, flow, path)
                if decider is None or decider in nxt:
                    continue
                nxt[decider] = fid
            queue.append((flow.target, nxt, path, on_path | {flow.target}))


def candidate_routes(d: ProcedureDefinition, flow_id: str):
    """Choices (deciding step → flow) of the routes that reach the gateway of ``flow_id`` and leave
    it by that flow, shortest first, without repeats."""
    gateway = d.flows[flow_id].source
    given: set[tuple[tuple[str, str], ...]] = set()
    for node_id, choices, path in _paths(d):
        if node_id != gateway:
            continue
        chosen = dict(choices)
        if flow_id != d.nodes[gateway].default_flow:
            decider = deciding_step(d, d.flows[flow_id], path)
            if decider is None or decider in chosen:
                continue
            chosen[decider] = flow_id
        key = tuple(sorted(chosen.items()))
        if key not in given:
            given.add(key)
            yield chosen


def choices_for_exit(d: ProcedureDefinition, flow_id: str, params: Mapping[str, Any] | None = None,
                     *, tries: int = 40) -> dict[str, str] | None:
    """Exits to take so that a case reaches the gateway of ``flow_id`` and leaves it by that flow.

    Routes are tried shortest first; each is checked by driving a case through the definition
    (with the planner and the procedure's default ``params``) until the flow is taken, so a route
    whose data would turn off elsewhere is passed over. None if no route drives data into it.
    """
    if params is None:
        params = {key: p.default for key, p in d.parameters.items()}
    first = None
    for n, choices in enumerate(candidate_routes(d, flow_id)):
        if n >= tries:
            break
        first = first if first is not None else choices
        if simulate(d, choices, params, until_flow=flow_id):
            return choices
    return first


def simulate(d: ProcedureDefinition, choices: Mapping[str, str], params: Mapping[str, Any], *,
             until_flow: str | None = None, max_steps: int = 80) -> bool:
    """Drive a case through the definition alone, as :func:`walk` does through the engine (timers
    simply pass). With ``until_flow``: True once that flow is taken; otherwise True at a completed end."""
    pending = dict(choices)
    data: dict[str, Any] = {}
    node_id = d.start_ids[0]
    for _ in range(max_steps * 4):
        node = d.nodes[node_id]
        if node.type == "endEvent":
            return until_flow is None and (node.outcome or "completed") == "completed"
        if node.type == "userTask":
            take = pending.pop(node_id, None)
            try:
                data.update(plan_step_data(d, node_id, params, data, take=take, ahead=pending))
            except ValueError:
                return False
            flow_id = node.outgoing[0]
        elif node.type == "exclusiveGateway":
            flow_id = next((f for f in node.outgoing if f != node.default_flow and d.flows[f].condition
                            and _holds(d.flows[f].condition, data, params)), node.default_flow)  # type: ignore[arg-type]
            if flow_id is None:
                return False
        elif node.outgoing:
            flow_id = node.outgoing[0]
        else:
            return False
        if flow_id == until_flow:
            return True
        node_id = d.flows[flow_id].target
    return False


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
        d, params, data = case_context(app, case_id)
        take = pending.pop(step_id, None)
        payload = plan_step_data(d, step_id, params, data, take=take, ahead=pending)
        step = d.steps[step_id]
        kwargs: dict[str, Any] = {}
        user = users.get(step.role or "")
        if user is None and step.proxy:
            user = users.get("committee")
            kwargs = {"on_behalf_of": "张三明", "proxy_reason": "申请人年老行动不便"}
        if step.evidence_required:
            kwargs["attachments"] = sample_evidence(app, step, user)
        app.complete(case_id, step_id, user, payload, **kwargs)
        visited.append(step_id)
    raise AssertionError(f"case {case_id} did not end within {max_steps} steps: {visited}")


def sample_png(seed: str = "") -> bytes:
    """A small real PNG image (uncompressed), different for each ``seed``."""
    import hashlib
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + hashlib.sha256(f"{seed}:{y}".encode()).digest()[:12] for y in range(4))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b""))


def sample_evidence(app, step: Step, username: str | None) -> list[dict]:
    """A stored photo standing for the evidence a step must keep (e.g. its 公示照片), as references."""
    name = (step.evidence or "材料").split("、")[0][:40] + ".png"
    return app.store_files([(name, sample_png(step.id))], username or "system")


def case_context(app, case_id: int):
    """(definition, parameters, data of the first ready step) of a case, for planning its next step:
    one read of its version and state, the ready step's data rebuilt from the stored state
    (``spiff.ready_data``) without restoring the whole workflow."""
    from sqlalchemy import select

    from engine.core import procedures, spiff
    from storage.models import Case, CaseState

    with app.db.read() as s:
        version_id, state = s.execute(select(Case.procedure_version_id, CaseState.state)
                                      .join(CaseState, CaseState.case_id == Case.id)
                                      .where(Case.id == case_id)).one()
        rt = procedures.runtime(s, version_id)
    found = spiff.ready_data(state, rt.spec)
    if found is None:  # a workflow with running subprocesses: restored whole
        workflow = spiff.load_state(state, rt.spec, rt.subprocess_specs)
        tasks = spiff.ready_user_tasks(workflow)
        found = workflow.data, [(t.task_spec.name, t.data) for t in tasks]
    data, ready = found
    return rt.definition, dict(data.get(spiff.PARAMS_KEY, {})), dict(ready[0][1]) if ready else {}
