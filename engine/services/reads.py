"""Read-only queries of the web app (lists from the derived tables; never deserializes a case).

Everything here reads; every change goes through :class:`engine.service.Xiaowei`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select, union
from sqlalchemy.orm import Session

from engine.core import audit, catalogue, directory, procedures
from engine.core.definitions import ProcedureDefinition, Step
from engine.core.directory import Actor
from storage.models import AuditEvent, Case, CaseField, Organization, Procedure, User, WorkItem


def org_names(session: Session, ids: set[int] | None = None) -> dict[int, Organization]:
    query = select(Organization)
    if ids is not None:
        query = query.where(Organization.id.in_(ids))
    return {o.id: o for o in session.scalars(query)}


def roles_here(session: Session, actor: Actor, org_id: int) -> set[str]:
    return actor.roles_at(directory.chain_ids(session, org_id))


def can_act(session: Session, actor: Actor, org_id: int, step: Step | None, role_key: str) -> str | None:
    """'own' when the actor holds the step's role here, 'proxy' when they may act for the applicant (代办)."""
    held = roles_here(session, actor, org_id)
    if role_key and role_key in held:
        return "own"
    if step is not None and step.proxy and held & catalogue.PROXY_ROLES:
        return "proxy"
    return None


def definition(session: Session, version_id: int) -> ProcedureDefinition:
    return procedures.runtime(session, version_id).definition


@dataclass
class TaskRow:
    case_id: int
    title: str
    procedure_id: str
    procedure_name: str
    step_id: str
    step_name: str
    role: str
    org_code: str
    org_name: str
    ready_at: datetime
    due_at: datetime | None
    overdue: bool
    proxy: bool

    def to_dict(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "title": self.title, "procedure_id": self.procedure_id,
                "procedure_name": self.procedure_name, "step_id": self.step_id, "step_name": self.step_name,
                "role": self.role, "org": self.org_code, "org_name": self.org_name,
                "ready_at": audit.iso(self.ready_at), "due_at": audit.iso(self.due_at) if self.due_at else None,
                "overdue": self.overdue, "proxy": self.proxy}


def my_tasks(session: Session, actor: Actor, *, procedure: str | None = None, org_code: str | None = None,
             overdue: bool = False, limit: int = 500) -> list[TaskRow]:
    """Ready steps the actor may complete, from ``work_item`` joined with case, procedure and organization."""
    visible = directory.visible_org_ids(session, actor)
    if not visible:
        return []
    held = {role for role, _ in actor.assignments}
    now = audit.db_time()
    query = (select(WorkItem.case_id, WorkItem.step_id, WorkItem.step_name, WorkItem.role_key, WorkItem.org_id,
                    WorkItem.ready_at, WorkItem.due_at, Case.title, Case.procedure_id, Case.procedure_version_id,
                    Procedure.name, Organization.code, Organization.name)
             .join(Case, Case.id == WorkItem.case_id)
             .join(Procedure, Procedure.id == Case.procedure_id)
             .join(Organization, Organization.id == WorkItem.org_id)
             .where(WorkItem.org_id.in_(visible)))
    if not held & catalogue.PROXY_ROLES:
        query = query.where(WorkItem.role_key.in_(held))
    if procedure:
        query = query.where(WorkItem.procedure_id == procedure)
    if org_code:
        query = query.where(Organization.code == org_code)
    if overdue:
        query = query.where(WorkItem.due_at.is_not(None), WorkItem.due_at < now)
    query = query.order_by(WorkItem.due_at.is_(None), WorkItem.due_at, WorkItem.id).limit(limit * 4)
    rows: list[TaskRow] = []
    for r in session.execute(query):
        step = None
        if r.role_key not in roles_here(session, actor, r.org_id):
            step = definition(session, r.procedure_version_id).steps.get(r.step_id)
        how = can_act(session, actor, r.org_id, step, r.role_key)
        if how is None:
            continue
        rows.append(TaskRow(r.case_id, r.title, r.procedure_id, r[10], r.step_id, r.step_name, r.role_key,
                            r[11], r[12], r.ready_at, r.due_at, bool(r.due_at and r.due_at < now), how == "proxy"))
        if len(rows) >= limit:
            break
    return rows


def visible(session: Session, actor: Actor, org_id: int) -> bool:
    return org_id in directory.visible_org_ids(session, actor)


def is_supervisor(actor: Actor) -> bool:
    return any(role in catalogue.SUPERVISOR_ROLES | catalogue.ADMIN_ROLES for role, _ in actor.assignments)


@dataclass
class CaseQuery:
    """Filters of the case search (every one optional); ``page`` counts from 1."""

    mine: bool = True
    org_code: str | None = None
    procedure: str | None = None
    category: str | None = None
    status: str | None = None
    date_from: datetime | None = None   # started on or after (UTC)
    date_to: datetime | None = None     # started before (UTC)
    overdue: bool = False
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    person: str | None = None           # a user (username or name) who acted, or a name in a person field
    text: str | None = None             # title or tracking code
    page: int = 1
    per_page: int = 50
    by_id: bool = False                 # newest case first (the command line) instead of newest change




def _like(value: str) -> str:
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


PERSON_AMONG = 2000  # at most this many cases left by the other filters: the person is looked for among them


def search_cases(session: Session, actor: Actor | None, q: CaseQuery) -> tuple[list[dict], int]:
    """One page of cases the actor may see that match ``q``, newest change first, and the total count:
    the one case query of the pages, the API and ``xiaowei case list`` (``actor`` None: the operator at
    the command line, every case).

    Reads only ``case_instance`` and the derived ``work_item`` / ``case_field`` tables (and the audit
    events' actor index for "mine" and people); never deserializes a case."""
    conditions = []
    scope = []  # the actor's organizations, also applied inside the person search's sub-queries
    if actor is not None:
        orgs = directory.visible_org_ids(session, actor)
        if not orgs:
            return [], 0
        scope = [Case.org_id.in_(orgs)]
        conditions.extend(scope)
    person_cases = None  # the person search: a function of the candidate cases (None: all) to a query
    if q.mine and actor is not None:
        acted = select(AuditEvent.case_id).where(AuditEvent.actor == actor.username,
                                                 AuditEvent.case_id.is_not(None),
                                                 AuditEvent.type != "access_denied")
        started = select(Case.id).where(Case.started_by == actor.username)
        conditions.append(Case.id.in_(union(started, acted)))
    if q.org_code:  # the organization and everything below it (a township: its villages)
        org_id = session.scalar(select(Organization.id).where(Organization.code == q.org_code))
        if org_id is None:
            return [], 0
        chosen = directory.descendants(session, [org_id])
        if actor is not None:  # within the actor's scope: one short list instead of the scope's long one
            scope = [Case.org_id.in_(chosen & orgs or {-1})]
            conditions[0] = scope[0]  # the scope, set first
        else:
            conditions.append(Case.org_id.in_(chosen))
    if q.procedure:
        conditions.append(Case.procedure_id == q.procedure)
    if q.category:
        conditions.append(Case.procedure_id.in_(select(Procedure.id).where(Procedure.category == q.category)))
    if q.status:
        conditions.append(Case.status == q.status)
    if q.date_from:
        conditions.append(Case.created_at >= q.date_from)
    if q.date_to:
        conditions.append(Case.created_at < q.date_to)
    if q.overdue:
        now = audit.db_time()
        conditions.append(Case.id.in_(select(WorkItem.case_id).where(WorkItem.due_at.is_not(None),
                                                                      WorkItem.due_at < now)))
    if q.amount_min is not None or q.amount_max is not None:
        # A correlated EXISTS (probed through the (case_id, name) key), not ``id IN (list)``: an amount
        # range matches most money fields, and SQLite drove the whole query from that list (thousands of
        # rowid look-ups: 240 ms with every filter at 5,500 cases) instead of the narrow filters.
        money = select(CaseField.case_id).where(CaseField.case_id == Case.id, CaseField.type == "money")
        if q.amount_min is not None:
            money = money.where(CaseField.number_value >= q.amount_min)
        if q.amount_max is not None:
            money = money.where(CaseField.number_value <= q.amount_max)
        conditions.append(money.exists())
    if q.person:
        who = q.person.strip()
        users = session.scalars(select(User.username).where(  # read once (a LIKE over every account)
            or_(User.username == who, User.display_name.like(_like(who), escape="\\")))).all()

        def person_cases(within: list[int] | None):
            """The cases the person started, acted in or is named in: only among ``within`` when the
            other filters left few cases (they are in the actor's scope already), else each part within
            the actor's organizations (a common name matches cases all over a province: 948,393 of
            1,000,000 in the province benchmark)."""
            def part(query, case_id):
                if within is not None:
                    return query.where(case_id.in_(within))
                return query.join(Case, Case.id == case_id).where(*scope) if scope else query
            acted = part(select(AuditEvent.case_id).where(AuditEvent.actor.in_(users),
                                                          AuditEvent.type != "access_denied"), AuditEvent.case_id)
            # Names in person fields match from their start (张三 finds 张三明) with an index range scan.
            named = part(select(CaseField.case_id).where(
                CaseField.type == "person", CaseField.text_value >= who, CaseField.text_value < who + "\U0010ffff"),
                CaseField.case_id)
            started = select(Case.id).where(Case.started_by.in_(users),
                                            *([Case.id.in_(within)] if within is not None else scope))
            return union(started, acted, named) if users else named
    if q.text:
        t = q.text.strip()
        code = "".join(ch for ch in t.upper() if ch.isalnum())
        conditions.append(or_(Case.title.like(_like(t), escape="\\"), Case.tracking_code == code))
    first = max(q.page - 1, 0) * q.per_page
    order = (Case.id.desc(),) if q.by_id else (Case.updated_at.desc(), Case.id.desc())
    if person_cases is not None:
        # The other filters first (one narrow query), then the person among those cases when they are
        # few (the parts probe their indexes by case), else once over the actor's scope; intersected here.
        ordered = session.scalars(select(Case.id).where(*conditions).order_by(*order)).all()
        within = ordered if len(ordered) <= PERSON_AMONG else None
        matched = set(session.scalars(person_cases(within))) if ordered else set()
        hits = [i for i in ordered if i in matched]
        total, ids = len(hits), hits[first:first + q.per_page]
    else:
        total = session.scalar(select(func.count()).select_from(Case).where(*conditions)) or 0
        # The page's ids first (an index-only scan for the plain list), then the details of those rows only.
        ids = session.scalars(select(Case.id).where(*conditions).order_by(*order)
                              .limit(q.per_page).offset(first)).all()
    if not ids:
        return [], total
    query = (select(Case.id, Case.title, Case.status, Case.tracking_code, Case.procedure_id, Case.updated_at,
                    Case.created_at, Procedure.name, Organization.code, Organization.name)
             .join(Procedure, Procedure.id == Case.procedure_id)
             .join(Organization, Organization.id == Case.org_id)
             .where(Case.id.in_(ids)))
    found = {r.id: r for r in session.execute(query)}
    from engine.core.cases import format_tracking_code

    return [{"id": r.id, "title": r.title, "status": r.status, "tracking_code": format_tracking_code(r.tracking_code),
             "procedure_id": r.procedure_id, "procedure_name": r[7], "org": r[8], "org_name": r[9],
             "created_at": r.created_at, "updated_at": r.updated_at} for r in (found[i] for i in ids)], total


def list_cases(session: Session, actor: Actor, *, mine: bool = True, org_code: str | None = None,
               procedure: str | None = None, status: str | None = None, limit: int = 200) -> list[dict]:
    """Cases the actor started or acted in (``mine``), or every visible case matching the filters."""
    rows, _ = search_cases(session, actor, CaseQuery(mine=mine, org_code=org_code, procedure=procedure,
                                                     status=status, per_page=limit))
    return rows


def visible_orgs(session: Session, actor: Actor, kinds: tuple[str, ...] = ("village", "community")) -> list[Organization]:
    ids = directory.visible_org_ids(session, actor)
    return [o for o in session.scalars(select(Organization).where(Organization.id.in_(ids))
                                       .order_by(Organization.kind, Organization.code)) if o.kind in kinds]


def procedure_choices(session: Session) -> list[tuple[str, str]]:
    return [(p.id, p.name) for p in session.scalars(select(Procedure).order_by(Procedure.id))
            if "@" not in p.id]  # a township variant's key holds its versions, it is no procedure of its own


def events(session: Session, case_id: int) -> list[dict]:
    return [audit.event_dict(e) for e in audit.case_events(session, case_id)]


def initial_values(history: list[dict]) -> dict[str, Any]:
    """Initial form values given when the case started (prefilled in later steps, as the engine does)."""
    for ev in history:
        if ev["type"] == "case_started":
            return dict(ev["data"].get("initial") or {})
    return {}


def path_of(d: ProcedureDefinition, history: list[dict]) -> tuple[set[str], set[str]]:
    """Visited nodes and flows from the audit events: completed steps, gateway decisions, fired timers."""
    nodes: set[str] = set(d.start_ids) if history else set()
    flows: set[str] = set()
    for ev in history:
        data = ev["data"]
        if ev["type"] == "step_completed" and data.get("step"):
            nodes.add(data["step"])
        elif ev["type"] == "gateway_decided":
            nodes.add(data.get("gateway") or "")
            if data.get("flow"):
                flows.add(data["flow"])
            if data.get("target"):
                nodes.add(data["target"])
        elif ev["type"] == "timer_fired" and data.get("node"):
            nodes.add(data["node"])
        elif ev["type"] == "case_closed" and data.get("end"):
            nodes.add(data["end"])
    opened = {o.get("step") for ev in history for o in ev["data"].get("opened", []) if isinstance(o, dict)}
    timers = {t.get("node") for ev in history for t in ev["data"].get("timers", []) if isinstance(t, dict)}
    # Nodes passed without an event of their own (parallel gateways, throw events): visited when a
    # visited node leads into them and they lead on to something reached.
    passive = {n.id for n in d.nodes.values()
               if n.type not in ("userTask", "exclusiveGateway", "endEvent") and n.timer is None}
    changed = True
    while changed:
        changed = False
        reached = nodes | opened | timers
        for nid in passive - nodes:
            node = d.nodes[nid]
            if any(d.flows[f].source in nodes for f in node.incoming if f in d.flows) and \
                    any(d.flows[f].target in reached for f in node.outgoing if f in d.flows):
                nodes.add(nid)
                changed = True
    reached = nodes | opened | timers
    for flow in d.flows.values():
        src = d.nodes.get(flow.source)
        if src is None or src.type == "exclusiveGateway":
            continue  # decided flows come from gateway_decided
        if flow.source in nodes and flow.target in reached:
            flows.add(flow.id)
    return {n for n in nodes if n}, flows

