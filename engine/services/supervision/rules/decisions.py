"""Decisions and disclosure: execution before decision (WR-04), payment before acceptance (XW-03), disclosure too short (WR-05), quorum or majority not met (WR-07)."""

from __future__ import annotations

import json

from datetime import datetime
from typing import Iterator

from engine.services.supervision.registry import (
    LOCAL,
    Finding,
    P,
    ScanContext,
    as_date,
    local_time,
    rule,
)

# --- WR-04 execution before decision; XW-03 payment before acceptance -----------------------
# (procedure, field that must come first, the step that gives it, field that must not be earlier)
BEFORE_DECISION = [
    ("V-DEC-01", "meeting_date", "resolve", "completion_date", "实施完成日期早于村民代表会议决议日期"),
    ("C-DEC-01", "meeting_date", "resolve", "completion_date", "实施完成日期早于居民代表会议决议日期"),
    ("B-PUR-02", "decision_date", "decide_supplier", "paid_date", "报账付款早于联席会议确定供应商"),
    ("V-PRJ-01", "meeting_date", "major_decision", "register_date", "平台登记早于村民代表会议决议"),
]
BEFORE_ACCEPTANCE = [
    ("B-PUR-03", "acceptance_date", "acceptance", "paid_date", "报账付款早于验收"),
    ("B-PRJ-05", "acceptance_date", "acceptance", "final_pay_date", "支付工程尾款早于竣工验收"),
]


def _order_findings(ctx: ScanContext, rule_id: str, pairs) -> Iterator[Finding]:
    for proc, first, first_step, later, message in pairs:
        rows = ctx.fields([proc], [first, later])
        for r in rows.values():
            a, b = r.date(first), r.date(later)
            if a is None or b is None or r.step.get(first) != first_step or b >= a:
                continue
            yield Finding(
                rule_id,
                r.org_id,
                f"{r.case_id}|{later}",
                f"{message}({later} {b.isoformat()} 早于 {first} {a.isoformat()})",
                {
                    "procedure": proc,
                    "first_field": first,
                    "first": a.isoformat(),
                    "later_field": later,
                    "later": b.isoformat(),
                    "days_early": (a - b).days,
                },
                case_id=r.case_id,
            )


@rule(
    "WR-04",
    "先实施后决策",
    "Execution before decision",
    severity="red",
    procedures=[p[0] for p in BEFORE_DECISION],
    inspects="决议(确定)日期、决议公示期与实施完成、付款、平台登记日期",
    condition="实施、付款或登记日期早于决议或确定供应商的日期;或在决议公示期内(公示期满前)就已实施、登记",
)
def execution_before_decision(ctx: ScanContext) -> Iterator[Finding]:
    before = list(_order_findings(ctx, "WR-04", BEFORE_DECISION))
    yield from before
    flagged = {(f.case_id, f.facts["later_field"]) for f in before}
    for f in _inside_notice(ctx):
        if (f.case_id, f.facts["later_field"]) not in flagged:  # one set of facts, one warning
            yield f


# (procedure, the resolution's disclosure step, the field dated by the implementation, what it says)
def _utc(text: str) -> datetime:
    """An engine time as stored in events (``2026-03-02T01:00:00.000000Z``), naive UTC; ``strptime`` with
    ``%Y-%m-%dT%H:%M:%S.%fZ`` without its cost (a full scan parses one per disclosure)."""
    if not text.endswith("Z"):
        raise ValueError(text)
    return datetime.fromisoformat(text[:-1])


INSIDE_NOTICE = [
    ("V-DEC-01", "disclose_resolution", "completion_date", "实施完成日期在决议公示期内"),
    ("C-DEC-01", "disclose_resolution", "completion_date", "实施完成日期在决议公示期内"),
    ("V-PRJ-01", "disclose_decision", "register_date", "平台登记日期在决议公示期内"),
]


def _inside_notice(ctx: ScanContext) -> Iterator[Finding]:
    """Implementation dated inside the resolution's notice: on or after its first day and before the
    day the notice period ended (the period's timer, as the step recorded it)."""
    wanted = {(proc, disclosure): (later, message) for proc, disclosure, later, message in INSIDE_NOTICE}
    notices: dict[int, tuple] = {}  # case → (start, end, step name, later field, message)
    for case_id, _seq, _t, _at, _actor, _role, data, _org, proc, _v in ctx.events(
        ["step_completed"], like='%"notice_start"%', procedures=sorted({p for p, *_ in INSIDE_NOTICE})
    ):
        found = wanted.get((proc, data.get("step")))
        start = as_date((data.get("data") or {}).get("notice_start"))
        if found is None or start is None:
            continue
        for timer in data.get("timers") or []:
            if timer.get("node") == f"{data.get('step')}_period" and timer.get("due_at"):
                end = (_utc(timer["due_at"]) + LOCAL).date()
                notices[case_id] = (start, end, data.get("name"), *found)  # the latest round wins
    if not notices:
        return
    fields = sorted({later for *_, later, _m in notices.values()})
    rows = ctx.fields(sorted({p for p, *_ in INSIDE_NOTICE}), fields)
    for case_id, (start, end, name, later, message) in notices.items():
        r = rows.get(case_id)
        day = r.date(later) if r else None
        if day is None or not start <= day < end:
            continue
        yield Finding(
            "WR-04",
            r.org_id,
            f"{case_id}|{later}|notice",
            f"{message}:{day.isoformat()},而“{name}”公示期自{start.isoformat()}起,{end.isoformat()}期满",
            {
                "procedure": r.procedure_id,
                "notice_step": name,
                "notice_start": start.isoformat(),
                "notice_end": end.isoformat(),
                "later_field": later,
                "later": day.isoformat(),
                "days_before_end": (end - day).days,
            },
            case_id=case_id,
        )


@rule(
    "XW-03",
    "先付款后验收",
    "Payment before acceptance",
    severity="red",
    procedures=[p[0] for p in BEFORE_ACCEPTANCE],
    inspects="验收日期与报账、尾款支付日期(B-PUR-03、B-PRJ-05)",
    condition="付款日期早于验收日期",
)
def payment_before_acceptance(ctx: ScanContext) -> Iterator[Finding]:
    return _order_findings(ctx, "XW-03", BEFORE_ACCEPTANCE)


# --- WR-05 disclosure too short or removed early --------------------------------------------
@rule(
    "WR-05",
    "公示期不足",
    "Disclosure period too short",
    severity="yellow",
    inspects="公示步骤的公示开始日期、公示期计时、村务公开撤下日期",
    condition="实际公示天数(公示开始日至公示期满)少于规定天数,或村务公开在规定天数内撤下",
    params=(P("affairs_disclosure_days", "村务公开最短天数", "days", "15", "天"),),
)
def disclosure_short(ctx: ScanContext) -> Iterator[Finding]:
    for case_id, seq, _t, at, actor, _role, data, org_id, proc, _v in ctx.events(
        ["step_completed"], like='%"notice_start"%'
    ):
        start = as_date((data.get("data") or {}).get("notice_start"))
        step = data.get("step")
        if start is None:
            continue
        for timer in data.get("timers") or []:
            if timer.get("node") != f"{step}_period" or not timer.get("due_at"):
                continue
            due = (_utc(timer["due_at"]) + LOCAL).date()
            required = (due - local_time(at).date()).days
            actual = (due - start).days
            if actual < required:
                yield Finding(
                    "WR-05",
                    org_id,
                    f"{case_id}|{step}|{seq}",
                    f"“{data.get('name')}”公示开始日期{start.isoformat()}晚于登记日,实际公示{actual}天,少于规定{required}天",
                    {
                        "step": step,
                        "step_name": data.get("name"),
                        "notice_start": start.isoformat(),
                        "recorded": local_time(at).date().isoformat(),
                        "period_end": due.isoformat(),
                        "actual_days": actual,
                        "required_days": required,
                        "seq": seq,
                    },
                    case_id=case_id,
                    subjects=(actor,),
                )
    for r in ctx.fields(["V-PUB-01", "C-PUB-01"], ["notice_start", "withdraw_date"]).values():
        start, end = r.date("notice_start"), r.date("withdraw_date")
        if start is None or end is None:
            continue
        required = ctx.param(r.org_id, "affairs_disclosure_days")
        if (end - start).days < required:
            yield Finding(
                "WR-05",
                r.org_id,
                f"{r.case_id}|withdrawn",
                f"村(居)务公开{start.isoformat()}张贴、{end.isoformat()}撤下,仅{(end - start).days}天,少于{required}天",
                {
                    "notice_start": start.isoformat(),
                    "withdraw_date": end.isoformat(),
                    "actual_days": (end - start).days,
                    "required_days": required,
                },
                case_id=r.case_id,
            )


# --- WR-07 quorum or majority short of the statutory rule ----------------------------------
@rule(
    "WR-07",
    "会议法定人数或表决比例不足",
    "Quorum or majority not met",
    severity="red",
    inspects="表决步骤的应到、实到、赞成人数与表决结论",
    condition="按法定(事项库默认)比例不足法定人数或未过半,但因本地参数调低而按“通过”继续办理",
)
def quorum_not_met(ctx: ScanContext) -> Iterator[Finding]:
    from engine.core.expressions import ExpressionError, compile_expression
    from engine.core.procedures import runtime

    compiled: dict[str, object] = {}
    taken: dict[tuple[int, str, str], object] = {}  # (version, gateway, inputs) → the statutory flow or None

    def statutory(d, node, inputs: dict):
        """The first conditioned flow out of ``node`` that holds under the library defaults (a pure
        function of the definition and the inputs: decided once per distinct set of counts)."""
        defaults = {k: p.default for k, p in d.parameters.items()}
        for fid in node.outgoing:
            flow = d.flows[fid]
            if not flow.condition:
                continue
            try:
                expr = compiled.get(flow.condition) or compiled.setdefault(
                    flow.condition, compile_expression(flow.condition))
                held = bool(expr.evaluate(inputs, defaults))
            except (ExpressionError, TypeError, ValueError):
                continue
            if held:
                return flow, defaults
        return None

    for case_id, seq, _t, _at, _actor, _role, data, org_id, proc, version_id in ctx.events(
        ["gateway_decided"], like='%"members_total"%'
    ):
        if data.get("condition") != "default":
            continue
        d = runtime(ctx.session, version_id).definition
        node = d.nodes.get(data.get("gateway") or "")
        if node is None:
            continue
        inputs = data.get("inputs") or {}
        key = (version_id, node.id, json.dumps(inputs, sort_keys=True, default=str))
        if key not in taken:
            taken[key] = statutory(d, node, inputs)
        if taken[key] is not None:
            flow, defaults = taken[key]
            yield Finding(
                "WR-07",
                org_id,
                f"{case_id}|{seq}",
                f"{data.get('name') or '表决'}:按法定比例应为“{flow.name or flow.condition}”,却按通过继续办理",
                {
                    "gateway": node.id,
                    "should_take": flow.name,
                    "condition": flow.condition,
                    "inputs": inputs,
                    "statutory_params": {k: str(v) for k, v in defaults.items() if k in flow.condition},
                    "seq": seq,
                },
                case_id=case_id,
            )
