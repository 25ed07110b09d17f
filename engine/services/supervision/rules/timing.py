"""Time: steps overdue (WR-20), stalled cases (XW-01), quarterly financial disclosure overdue (WR-21)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, timedelta
from typing import Iterable, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core import audit
from storage.models import (
    AuditEvent,
    Case,
    Organization,
    TimerDue,
    WorkItem,
)

from engine.services.supervision.registry import (
    LOCAL,
    Finding,
    P,
    ScanContext,
    local_time,
    rule,
)


# --- WR-20 steps overdue; XW-01 stalled cases ------------------------------------------------
@rule(
    "WR-20",
    "环节办理超时",
    "Step overdue",
    severity="blue",
    timed=True,
    inspects="待办环节的办理时限(work_item.due_at)与完成时间",
    condition="环节已过办理时限仍未办理,或办理完成时已超过时限",
)
def step_overdue(ctx: ScanContext) -> Iterator[Finding]:
    query = select(
        WorkItem.case_id,
        WorkItem.task_id,
        WorkItem.step_id,
        WorkItem.step_name,
        WorkItem.role_key,
        WorkItem.due_at,
        WorkItem.org_id,
    ).where(WorkItem.due_at.is_not(None), WorkItem.due_at < ctx.now)
    if ctx.case_ids is not None:
        query = query.where(WorkItem.case_id.in_(ctx.case_ids))
    for case_id, task_id, step_id, name, role, due, org_id in ctx.session.execute(query):
        yield Finding(
            "WR-20",
            org_id,
            f"{case_id}|{task_id}",
            f"“{name}”已超过办理时限({local_time(due):%Y-%m-%d %H:%M})",
            {"step": step_id, "step_name": name, "role": role, "due_at": audit.iso(due), "open": True},
            case_id=case_id,
        )
    if ctx.case_ids is None:
        return  # completed late: judged when the step is completed (the incremental evaluation)
    for c in latest_step_lateness(ctx.session, ctx.case_ids):
        if c["late"]:
            yield Finding(
                "WR-20",
                c["org_id"],
                f"{c['case_id']}|{c['task_id']}",
                f"“{c['name']}”超过办理时限完成(时限{c['due_at'][:16]})",
                {
                    "step": c["step"],
                    "step_name": c["name"],
                    "due_at": c["due_at"],
                    "completed_at": c["completed_at"],
                    "actor": c["actor"],
                    "open": False,
                },
                case_id=c["case_id"],
                subjects=(c["actor"],),
            )


OPENERS = ("case_started", "step_completed", "steps_opened", "timer_fired", "gateway_decided")


def latest_step_lateness(session: Session, case_ids: Iterable[int], *, depth: int = 8) -> list[dict]:
    """The latest completed step of each case and whether it was completed late, from the end of its trail
    only: the chain read backwards on its (chain, seq) index from the latest ``step_completed`` to the event
    that opened that step (its ``opened`` entry holds the time limit) — usually a few events, ``depth`` at
    a time, never the whole trail unless the step was opened at its start. The incremental WR-20 after a
    change (one case; the events of no other case are read)."""
    out: list[dict] = []
    for case_id in sorted(set(case_ids)):
        completion, parsed, limit, before = None, None, None, None
        while True:
            query = (
                select(AuditEvent.seq, AuditEvent.type, AuditEvent.at, AuditEvent.actor, AuditEvent.data, Case.org_id)
                .join(Case, Case.id == AuditEvent.case_id)
                .where(AuditEvent.chain == f"case:{case_id}")
                .order_by(AuditEvent.seq.desc())
                .limit(depth)
            )
            if before is not None:
                query = query.where(AuditEvent.seq < before)
            rows = session.execute(query).all()
            for row in rows:
                if row.type not in OPENERS:
                    continue
                data = json.loads(row.data)
                if completion is None:
                    if row.type == "step_completed":
                        completion, parsed = row, data
                    continue
                hit = [o for o in data.get("opened") or [] if o.get("step") == parsed.get("step")]
                if hit:
                    limit = hit[0].get("due_at")
                    break
            else:
                if len(rows) == depth:  # not found yet: the next events back
                    before = rows[-1].seq
                    continue
            break
        if completion is None:
            continue
        out.append({
            "case_id": case_id,
            "task_id": parsed.get("task_id"),
            "step": parsed.get("step"),
            "name": parsed.get("name"),
            "actor": completion.actor,
            "org_id": completion.org_id,
            "completed_at": audit.iso(completion.at),
            "due_at": limit,
            "late": bool(limit and audit.iso(completion.at) > limit),
        })
    return out


def late_steps(
    session: Session, case_ids: Iterable[int] | None = None, *, actor: str | None = None, latest_only: bool = False
) -> list[dict]:
    """Completed steps with their time limit from the audit trail: whether each was completed late."""
    query = (
        select(
            AuditEvent.case_id,
            AuditEvent.seq,
            AuditEvent.type,
            AuditEvent.at,
            AuditEvent.actor,
            AuditEvent.data,
            Case.org_id,
        )
        .join(Case, Case.id == AuditEvent.case_id)
        .where(
            AuditEvent.type.in_(("case_started", "step_completed", "steps_opened", "timer_fired", "gateway_decided"))
        )
    )
    if case_ids is not None:
        query = query.where(AuditEvent.case_id.in_(list(case_ids)))
    if actor is not None:
        query = query.where(AuditEvent.case_id.in_(select(AuditEvent.case_id).where(AuditEvent.actor == actor)))
    out: list[dict] = []
    due: dict[tuple[int, str], str | None] = {}
    last_by_case: dict[int, dict] = {}
    for case_id, seq, type_, at, who, data, org_id in session.execute(
        query.order_by(AuditEvent.case_id, AuditEvent.seq)
    ):
        parsed = json.loads(data)
        if type_ == "step_completed":
            step = parsed.get("step")
            limit = due.get((case_id, step))
            item = {
                "case_id": case_id,
                "task_id": parsed.get("task_id"),
                "step": step,
                "name": parsed.get("name"),
                "actor": who,
                "org_id": org_id,
                "completed_at": audit.iso(at),
                "due_at": limit,
                "late": bool(limit and audit.iso(at) > limit),
            }
            if actor is None or who == actor:
                out.append(item)
            last_by_case[case_id] = item
        for opened in parsed.get("opened") or []:
            due[(case_id, opened.get("step"))] = opened.get("due_at")
    if latest_only:
        return [v for v in last_by_case.values()]
    return out


@rule(
    "XW-01",
    "事项停滞",
    "Case stalled",
    severity="yellow",
    timed=True,
    inspects="办理中事项的最后变动时间、等待中的计时器",
    condition="事项办理中,N天没有任何进展,且没有在等待公示期等计时器",
    params=(P("stall_days", "事项停滞预警天数", "days", "30", "天"),),
)
def case_stalled(ctx: ScanContext) -> Iterator[Finding]:
    waiting = select(TimerDue.case_id).where(TimerDue.due_at > ctx.now)
    query = select(Case.id, Case.org_id, Case.updated_at, Case.title).where(
        Case.status == "running", Case.updated_at < ctx.now - timedelta(days=1), Case.id.not_in(waiting)
    )
    if ctx.case_ids is not None:
        query = query.where(Case.id.in_(ctx.case_ids))
    for case_id, org_id, updated, title in ctx.session.execute(query):
        days = ctx.param(org_id, "stall_days")
        idle = (ctx.now - updated).days
        if idle >= days:
            yield Finding(
                "XW-01",
                org_id,
                f"{case_id}|{audit.iso(updated)}",
                f"“{title}”已{idle}天没有进展(自{local_time(updated):%Y-%m-%d})",
                {"last_change": audit.iso(updated), "idle_days": idle, "limit": days},
                case_id=case_id,
            )


# --- WR-21 quarterly financial disclosure -----------------------------------------------------
@rule(
    "WR-21",
    "财务公开逾期",
    "Financial disclosure overdue",
    severity="yellow",
    timed=True,
    procedures=["V-PUB-01", "C-PUB-01"],
    inspects="村(居)务公开(V-PUB-01、C-PUB-01)的公示开始日期,按季度",
    condition="季度结束后N天内没有发布村(居)务(财务)公开",
    params=(P("finance_disclosure_grace_days", "季度财务公开期限(季度结束后)", "days", "15", "天"),),
)
def finance_disclosure_overdue(ctx: ScanContext) -> Iterator[Finding]:
    if ctx.case_ids is not None:
        return  # judged by the passing of time: tick and scan
    created = dict(
        ctx.session.execute(
            select(Organization.id, Organization.created_at).where(Organization.kind.in_(("village", "community")))
        ).all()
    )
    published: dict[int, list[date]] = defaultdict(list)
    for r in ctx.fields(["V-PUB-01", "C-PUB-01"], ["notice_start"]).values():
        if r.date("notice_start"):
            published[r.org_id].append(r.date("notice_start"))
    for org_id, since in created.items():
        grace = ctx.param(org_id, "finance_disclosure_grace_days")
        since_day = (since + LOCAL).date()
        year, quarter = ctx.today.year, (ctx.today.month - 1) // 3  # quarter index of today (0..3)
        for back in range(1, 5):
            q = quarter - back
            y = year + (q // 4)
            q %= 4
            end = date(y + (1 if q == 3 else 0), 1 if q == 3 else q * 3 + 4, 1) - timedelta(days=1)
            if end < since_day or end + timedelta(days=grace) >= ctx.today:
                continue
            if any(end - timedelta(days=15) < d <= end + timedelta(days=grace) for d in published.get(org_id, [])):
                continue
            yield Finding(
                "WR-21",
                org_id,
                f"{org_id}|{y}Q{q + 1}",
                f"{y}年第{q + 1}季度财务公开在季度结束后{grace}天内未发布",
                {
                    "year": y,
                    "quarter": q + 1,
                    "quarter_end": end.isoformat(),
                    "deadline": (end + timedelta(days=grace)).isoformat(),
                },
            )
