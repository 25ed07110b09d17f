"""Conduct: separation of duties (XW-02), evidence missing at payment steps (XW-04), odd-hour bulk actions (XW-05), monthly checklist findings (XW-06)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, timedelta
from typing import Iterator

from sqlalchemy import Integer, and_, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import UnaryExpression

from storage.models import (
    AuditEvent,
    Case,
)

from engine.services.supervision.registry import (
    Finding,
    P,
    ScanContext,
    local_time,
    normalized,
    rule,
)

# --- XW-02 separation of duties -----------------------------------------------------------------
SOD_PAIRS = {
    frozenset({"applicant", "committee"}): "申请人与审核人",
    frozenset({"applicant", "civil_affairs"}): "申请人与审核人",
    frozenset({"applicant", "director"}): "申请人与审批人",
    frozenset({"applicant", "assessment_panel"}): "申请人与评议人",
    frozenset({"handler", "director"}): "经办人与审批人",
    frozenset({"handler", "joint_meeting"}): "经办人与审批人",
    frozenset({"handler", "seal_keeper"}): "用印申请人与印章保管人",
    frozenset({"director", "seal_keeper"}): "用印审批人与印章保管人",
    frozenset({"handler", "bookkeeper"}): "经办人与报账员",
    frozenset({"handler", "acceptance_team"}): "采购人与验收人",
    frozenset({"committee", "acceptance_team"}): "提出人与验收人",
    frozenset({"committee", "supervision_committee"}): "执行人与监督人",
    frozenset({"handler", "supervision_committee"}): "经办人与监督人",
    frozenset({"bookkeeper", "supervision_committee"}): "报账员与监督人",
    frozenset({"director", "supervision_committee"}): "审批人与监督人",
    frozenset({"party_branch", "supervision_committee"}): "提议人与监督人",
}
SOD_ROLES = sorted({r for pair in SOD_PAIRS for r in pair})


@rule(
    "XW-02",
    "不相容职务由一人担任",
    "Separation of duties",
    severity="red",
    inspects="同一事项中各环节的办理人和所用角色;采购与验收的办理人(B-PUR-01/B-PUR-03 按采购单号)",
    condition="同一人(同一账号,或人员库中同一人持有的不同账号)在同一事项中以流程分开的两个角色办理(申请与审核、经办与审批、用印与保管、采购与验收、执行与监督)",
)
def separation_of_duties(ctx: ScanContext) -> Iterator[Finding]:
    acted = [AuditEvent.type.in_(("step_completed", "case_started")), AuditEvent.role.in_(SOD_ROLES)]
    if ctx.case_ids is not None:
        acted.append(AuditEvent.case_id.in_(ctx.case_ids))
    holders = _holders(ctx.session)
    # set-based: only the accounts that acted in two or more of these roles in a case, and the accounts
    # of a person holding several (their roles add up by person, not by account)
    several = (
        select(AuditEvent.case_id, AuditEvent.actor)
        .where(*acted)
        .group_by(AuditEvent.case_id, AuditEvent.actor)
        .having(func.count(AuditEvent.role.distinct()) > 1)
        .subquery()
    )
    base = select(AuditEvent.case_id, AuditEvent.actor, AuditEvent.role, Case.org_id).join(
        Case, Case.id == AuditEvent.case_id).where(*acted).distinct()
    queries = [base.join(several, and_(several.c.case_id == AuditEvent.case_id, several.c.actor == AuditEvent.actor))]
    if holders:
        queries.append(base.where(AuditEvent.actor.in_(sorted(holders))))
    roles: dict[tuple[int, str], set[str]] = defaultdict(set)
    accounts: dict[tuple[int, str], set[str]] = defaultdict(set)
    orgs: dict[int, int] = {}
    for case_id, actor, role, org_id in (row for q in queries for row in ctx.session.execute(q)):
        who = holders.get(actor, actor)  # people, not accounts: two accounts of one person are one
        roles[(case_id, who)].add(role)
        accounts[(case_id, who)].add(actor)
        orgs[case_id] = org_id
    for (case_id, who), held in roles.items():
        for pair, label in SOD_PAIRS.items():
            if pair <= held:
                names = sorted(pair)
                used = sorted(accounts[(case_id, who)])
                actor = used[0] if len(used) == 1 else who
                shown = used[0] if len(used) == 1 else f"同一人({'、'.join(used)})"
                yield Finding(
                    "XW-02",
                    orgs[case_id],
                    f"{case_id}|{actor}|{'+'.join(names)}",
                    f"{shown} 在同一事项中既是{label.split('与')[0]}又是{label.split('与')[1]}",
                    {"actor": "、".join(used), "accounts": used, "roles": names, "pair": label},
                    case_id=case_id,
                    subjects=tuple(used),
                )
    # buyer and acceptor across cases: the same purchase number (only a purchase or an acceptance can change it)
    changed = ctx.scope_procedures()
    if changed is not None and not changed & {"B-PUR-01", "B-PUR-03"}:
        return
    buys = ctx.fields(["B-PUR-01"], ["purchase_no"], by_org=True, require="purchase_no")
    accepts = ctx.fields(["B-PUR-03"], ["purchase_no"], by_org=True, require="purchase_no")
    if not buys or not accepts:
        return
    by_no = defaultdict(list)
    for r in buys.values():
        by_no[(r.org_id, normalized(r.text["purchase_no"]))].append(r.case_id)
    pairs = [(a, b) for a in accepts.values() for b in by_no.get((a.org_id, normalized(a.text["purchase_no"])), [])]
    if not pairs:
        return
    wanted = {c for a, b in pairs for c in (a.case_id, b)}
    actors: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    names: dict[str, set[str]] = defaultdict(set)
    for case_id, actor, data in ctx.session.execute(
        select(AuditEvent.case_id, AuditEvent.actor, AuditEvent.data).where(
            AuditEvent.case_id.in_(wanted), AuditEvent.type == "step_completed"
        )
    ):
        who = holders.get(actor, actor)
        actors[case_id][json.loads(data).get("step")].add(who)
        names[who].add(actor)
    for accept, buy in pairs:
        for actor in actors[accept.case_id].get("acceptance", set()) & actors[buy].get("request", set()):
            used = sorted(names[actor])
            shown = used[0] if len(used) == 1 else f"同一人({'、'.join(used)})"
            yield Finding(
                "XW-02",
                accept.org_id,
                f"{accept.case_id}|{actor}|buyer+acceptor",
                f"{shown} 既提出采购(事项{buy})又参加验收",
                {
                    "actor": "、".join(used),
                    "accounts": used,
                    "pair": "采购人与验收人",
                    "purchase_case": buy,
                    "purchase_no": accept.text["purchase_no"],
                },
                case_id=accept.case_id,
                subjects=tuple(used),
            )


def _holders(session: Session) -> dict[str, str]:
    """username → ``person:<id>`` for the accounts held by a person who holds more than one account (the
    others compare by account, so their warnings keep the fingerprints they had)."""
    from storage.models import User

    linked = session.execute(select(User.username, User.person_id).where(User.person_id.is_not(None))).all()
    count: dict[int, int] = defaultdict(int)
    for _, pid in linked:
        count[pid] += 1
    return {u: f"person:{pid}" for u, pid in linked if count[pid] > 1}


# --- XW-04 evidence missing on payment steps ---------------------------------------------------
PAYMENT_FIELDS = {"paid_amount", "paid_total", "final_amount", "pay_amount", "advance_amount", "fee_received"}


def _payment_steps(session: Session) -> dict[str, set[str]]:
    """Steps (by procedure) that pay money and declare evidence, in the current versions."""
    from engine.core.procedures import runtime
    from storage.models import Procedure

    found: dict[str, set[str]] = defaultdict(set)
    for proc in session.scalars(
        select(Procedure).where(Procedure.current_version_id.is_not(None), Procedure.id.in_(PAYMENT_PROCEDURES))
    ):
        d = runtime(session, proc.current_version_id).definition
        for step in d.steps.values():
            if step.evidence and any(f.name in PAYMENT_FIELDS for f in step.fields):
                found[proc.id].add(step.id)
    return found


PAYMENT_PROCEDURES = [
    "B-PUR-02",
    "B-PUR-03",
    "B-SVC-02",
    "B-SVC-04",
    "B-FIN-04",
    "B-PRJ-03",
    "B-PRJ-05",
    "V-AST-04",
    "V-DEC-03",
    "C-AST-01",
]


@rule(
    "XW-04",
    "付款环节缺少凭证",
    "Evidence missing at a payment step",
    severity="yellow",
    procedures=PAYMENT_PROCEDURES,
    inspects="付款、报账环节(流程规定须附凭证的)是否上传了凭证文件",
    condition="流程规定须附凭证的付款环节办理时没有附任何文件",
)
def evidence_missing(ctx: ScanContext) -> Iterator[Finding]:
    steps = _payment_steps(ctx.session)
    for case_id, seq, _t, _at, actor, _role, data, org_id, proc, _v in ctx.events(
        ["step_completed"], procedures=list(steps)
    ):
        if data.get("step") in steps.get(proc, ()) and not data.get("attachments"):
            yield Finding(
                "XW-04",
                org_id,
                f"{case_id}|{seq}",
                f"“{data.get('name')}”未附凭证文件",
                {"step": data.get("step"), "step_name": data.get("name"), "seq": seq},
                case_id=case_id,
                subjects=(actor,),
            )


# --- XW-05 odd hours in bulk ----------------------------------------------------------------------
def _unindexed(column):
    """``+column`` (SQLite): the same value, but no index of the column is used to find the rows."""
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


@rule(
    "XW-05",
    "深夜批量操作",
    "Actions at odd hours in bulk",
    severity="yellow",
    inspects="办理环节的时间与办理人",
    condition="同一人在一天的22:00–次日6:00(北京时间)办理环节达到N次",
    params=(P("odd_hours_count", "深夜批量操作次数", "integer", "10", "次"),),
)
def odd_hours(ctx: ScanContext) -> Iterator[Finding]:
    query = (
        select(AuditEvent.actor, AuditEvent.at, AuditEvent.case_id, Case.org_id)
        .join(Case, Case.id == AuditEvent.case_id)
        .where(AuditEvent.type == "step_completed")
    )
    if ctx.session.get_bind().dialect.name == "postgresql":
        hour = func.extract("hour", AuditEvent.at)
    else:
        hour = func.cast(func.strftime("%H", AuditEvent.at), type_=Integer)
    query = query.where(hour >= 14, hour < 22)  # 22:00–06:00 China time
    if ctx.case_ids is not None:  # the people who just acted, over the last night (the at index)
        since = ctx.now - timedelta(days=1)
        actors = sorted(
            set(
                ctx.session.scalars(
                    select(AuditEvent.actor).where(
                        AuditEvent.case_id.in_(ctx.case_ids),
                        AuditEvent.type == "step_completed",
                        AuditEvent.at >= since,
                    )
                )
            )
        )
        if not actors:
            return
        kind, actor = AuditEvent.type, AuditEvent.actor
        if ctx.session.get_bind().dialect.name == "sqlite":
            # The night is what narrows the query: SQLite's planner, with the sampled statistics of
            # storage.db.analyze, took the type index (every step_completed event of the district,
            # ~100 ms per changed case at 10,000 cases) or the actor index (a township user's whole
            # history) over the time index (0.4 ms); the unary + keeps it off both.
            kind, actor = _unindexed(kind), _unindexed(actor)
        query = (select(AuditEvent.actor, AuditEvent.at, AuditEvent.case_id, Case.org_id)
                 .join(Case, Case.id == AuditEvent.case_id)
                 .where(kind == "step_completed", hour >= 14, hour < 22, AuditEvent.at >= since, actor.in_(actors)))
    groups: dict[tuple[str, date], list] = defaultdict(list)
    for actor, at, case_id, org_id in ctx.session.execute(query):
        local = local_time(at) - timedelta(hours=6)  # the night belongs to the day it started
        groups[(actor, local.date())].append((case_id, org_id))
    for (actor, night), items in groups.items():
        org_id = max(set(o for _, o in items), key=lambda o: sum(1 for _, x in items if x == o))
        if len(items) >= ctx.param(org_id, "odd_hours_count"):
            cases = sorted({c for c, _ in items})
            yield Finding(
                "XW-05",
                org_id,
                f"{actor}|{night.isoformat()}",
                f"{actor} 在 {night.isoformat()} 夜间办理{len(items)}个环节",
                {"actor": actor, "night": night.isoformat(), "count": len(items), "cases": cases},
                case_id=cases[-1],
                subjects=(actor,),
            )


# --- XW-06 findings of the liaison station's monthly checklist (B-SUP-01) ---------------------------
CHECK_AREAS = {
    "decisions": "重大事项决策",
    "disclosure": "村(居)务公开",
    "finance": "财务管理",
    "projects": "工程项目",
    "welfare": "惠民政策落实",
}


@rule(
    "XW-06",
    "月度监督检查发现问题",
    "Problem found by the monthly supervision checklist",
    severity="yellow",
    procedures=["B-SUP-01"],
    inspects="监察工作联络站月度监督检查(B-SUP-01)五个方面的检查结果和情况说明",
    condition="某一方面勾选“发现问题”(每个事项每个方面预警一次)",
)
def checklist_finding(ctx: ScanContext) -> Iterator[Finding]:
    names = [f"{a}_{suffix}" for a in CHECK_AREAS for suffix in ("problem", "note")]
    for r in ctx.fields(["B-SUP-01"], names).values():
        for area, label in CHECK_AREAS.items():
            if str(r.text.get(f"{area}_problem", "")).lower() not in ("true", "1", "yes"):
                continue
            note = r.text.get(f"{area}_note") or ""
            yield Finding(
                "XW-06",
                r.org_id,
                f"{r.case_id}|{area}",
                f"月度监督检查发现{label}方面的问题:{note}"[:300],
                {"area": area, "area_zh": label, "note": note, "step": r.step.get(f"{area}_problem")},
                case_id=r.case_id,
            )
