"""Supervision intelligence (监督分析): dashboard figures, the heat map of a procedure, the cadre file
(廉情档案) with supervisors' notes, village grades (评级) with their notices, and the liaison station's
monthly checklist started for every village and community.

Everything here reads the derived tables (``case_instance``, ``work_item``, ``case_field``,
``warning``) and, for step durations and time limits, one narrow pass over the audit events that
complete or open steps (``step_completed`` with ``data.step``; ``opened`` lists with ``due_at``).
No case is deserialized.

Scheduled cases (the monthly checklist ``B-SUP-01`` and the grade notice ``B-SUP-02``) are started
through the engine as ``system`` and recorded in ``periodic_case`` under a unique (kind, org,
period) constraint: at most once per organization and month, also from two processes at once.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Callable, Iterable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.core import audit, catalogue, directory
from engine.core.errors import Forbidden, InvalidData, NotFound
from storage.models import (
    AuditEvent, Case, Organization, PeriodicCase, Procedure, ProcedureVersion, RoleAssignment,
    SupervisionNote, SupervisionWarning, User, WorkItem,
)

LOCAL = timedelta(hours=8)  # China time: months and days people see
VILLAGE_KINDS = ("village", "community")
# Who sees the dashboards: township staff and government, the township discipline and supervision
# offices, district administrators; at a village the committee and the supervisors (their village).
DASHBOARD_ROLES = frozenset({
    "township_staff", "township_government", "township_party_committee", "township_discipline",
    "supervision_office", "district_admin", "committee", "director", "supervision_committee", "liaison_station",
})
SUPERVISOR_ROLES = catalogue.SUPERVISOR_ROLES
NOTE_KINDS = {"talk": "谈话", "notice": "提醒", "three_lists": "三交底", "other": "其他"}
GRADES = ("A", "B", "C", "D")
NOTICE_KINDS = {"C": ("warning", "预警通知书"), "D": ("rectify", "整改通知书")}
MONTHLY_PROCEDURE = "B-SUP-01"
NOTICE_PROCEDURE = "B-SUP-02"


# --- months -------------------------------------------------------------------------------------
def parse_month(text: str | None, now: datetime | None = None) -> str:
    """'YYYY-MM' (validated); default: the current month in China time."""
    if not text:
        return ((now or audit.db_time()) + LOCAL).strftime("%Y-%m")
    try:
        parsed = datetime.strptime(text.strip(), "%Y-%m")
    except ValueError:
        raise InvalidData(f"月份须写作 YYYY-MM:{text} / the month must be YYYY-MM", {"month": text}) from None
    return parsed.strftime("%Y-%m")


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[start, end) of a China-time month as naive UTC datetimes."""
    y, m = int(month[:4]), int(month[5:7])
    start = datetime(y, m, 1)
    end = datetime(y + (m == 12), m % 12 + 1, 1)
    return start - LOCAL, end - LOCAL


def previous_month(month: str) -> str:
    y, m = int(month[:4]), int(month[5:7])
    return f"{y - (m == 1):04d}-{(m - 2) % 12 + 1:02d}"


def last_months(month: str, n: int) -> list[str]:
    out = [month]
    while len(out) < n:
        out.append(previous_month(out[-1]))
    return out[::-1]


def _month_of(at: datetime) -> str:
    return (at + LOCAL).strftime("%Y-%m")


# --- scope ----------------------------------------------------------------------------------------
def may_see_dashboard(actor: directory.Actor | None) -> bool:
    return actor is not None and any(role in DASHBOARD_ROLES for role, _ in actor.assignments)


def dashboard_scope(session: Session, actor: directory.Actor) -> set[int]:
    """Organizations the actor's dashboard covers: the subtrees where they hold a dashboard role
    (within :func:`engine.directory.visible_org_ids`)."""
    return directory.descendants(session, {oid for role, oid in actor.assignments if role in DASHBOARD_ROLES}) \
        & directory.visible_org_ids(session, actor)


def orgs_in(session: Session, org_ids: Iterable[int]) -> list[Organization]:
    ids = set(org_ids)
    return list(session.scalars(select(Organization).where(Organization.id.in_(ids or {-1}))
                                .order_by(Organization.code)))


def villages_in(session: Session, org_ids: Iterable[int]) -> list[Organization]:
    return [o for o in orgs_in(session, org_ids) if o.kind in VILLAGE_KINDS]


# --- steps: durations and time limits from the audit trail ------------------------------------------
@dataclass
class StepDone:
    case_id: int
    org_id: int
    procedure_id: str
    step: str
    name: str
    actor: str
    opened_at: datetime | None
    completed_at: datetime
    due_at: str | None

    @property
    def seconds(self) -> float | None:
        return (self.completed_at - self.opened_at).total_seconds() if self.opened_at else None

    @property
    def late(self) -> bool:
        return bool(self.due_at and audit.iso(self.completed_at) > self.due_at)


_OPENING_TYPES = ("case_started", "step_completed", "steps_opened", "timer_fired", "gateway_decided")


def completed_steps(session: Session, org_ids: Iterable[int] | None = None, *, procedure_id: str | None = None,
                    actor: str | None = None, case_ids: Iterable[int] | None = None) -> list[StepDone]:
    """Every completed step with when it was opened and its time limit, in one ordered pass over the
    events that complete or open steps (of the cases of ``org_ids`` / ``procedure_id`` / ``case_ids``,
    or the cases ``actor`` acted in)."""
    query = (select(AuditEvent.case_id, AuditEvent.type, AuditEvent.at, AuditEvent.actor, AuditEvent.data,
                    Case.org_id, Case.procedure_id)
             .join(Case, Case.id == AuditEvent.case_id)
             .where(AuditEvent.type.in_(_OPENING_TYPES)))
    if org_ids is not None:
        query = query.where(Case.org_id.in_(set(org_ids) or {-1}))
    if procedure_id is not None:
        query = query.where(Case.procedure_id == procedure_id)
    if case_ids is not None:
        query = query.where(AuditEvent.case_id.in_(set(case_ids) or {-1}))
    if actor is not None:
        query = query.where(AuditEvent.case_id.in_(
            select(AuditEvent.case_id).where(AuditEvent.actor == actor, AuditEvent.type == "step_completed")))
    opened: dict[tuple[int, str], tuple[datetime, str | None]] = {}
    out: list[StepDone] = []
    for case_id, type_, at, who, data, org_id, proc in session.execute(query.order_by(AuditEvent.case_id,
                                                                                        AuditEvent.seq)):
        parsed = json.loads(data)
        if type_ == "step_completed":
            step = parsed.get("step") or ""
            when, due = opened.pop((case_id, step), (None, None))
            if actor is None or who == actor:
                out.append(StepDone(case_id, org_id, proc, step, parsed.get("name") or step, who, when, at, due))
        for item in parsed.get("opened") or []:
            opened[(case_id, item.get("step") or "")] = (at, item.get("due_at"))
    return out


def on_time_figures(steps: Iterable[StepDone]) -> dict:
    """On time / late among completed steps that had a time limit; the rate (None without any)."""
    with_due = [s for s in steps if s.due_at]
    late = sum(1 for s in with_due if s.late)
    return {"with_due": len(with_due), "on_time": len(with_due) - late, "late": late,
            "rate": (len(with_due) - late) / len(with_due) if with_due else None}


def step_durations(session: Session, steps: Iterable[StepDone]) -> list[dict]:
    """Per procedure and step: how many, average and longest duration (hours), late count."""
    groups: dict[tuple[str, str], list[StepDone]] = defaultdict(list)
    for s in steps:
        if s.seconds is not None:
            groups[(s.procedure_id, s.step)].append(s)
    names = dict(session.execute(select(Procedure.id, Procedure.name)).all())
    rows = []
    for (proc, step), items in groups.items():
        secs = [i.seconds for i in items]
        rows.append({"procedure_id": proc, "procedure_name": names.get(proc, proc), "step": step,
                     "step_name": items[-1].name, "count": len(items), "avg_hours": sum(secs) / len(secs) / 3600,
                     "max_hours": max(secs) / 3600, "late": sum(1 for i in items if i.late)})
    return sorted(rows, key=lambda r: -r["avg_hours"])


# --- the dashboard ----------------------------------------------------------------------------------
def dashboard(session: Session, org_ids: set[int], *, now: datetime | None = None, months: int = 12) -> dict:
    """Every figure of the dashboard for the villages among ``org_ids``."""
    now = now or audit.db_time()
    villages = villages_in(session, org_ids)
    vids = {v.id for v in villages}
    orgs = {o.id: o for o in session.scalars(select(Organization))}
    township_of = {v.id: orgs.get(v.parent_id) for v in villages}
    names = dict(session.execute(select(Procedure.id, Procedure.name)).all())
    from engine.core.cases import STATUS_ZH

    by_proc: dict[str, dict] = {}
    by_village: dict[int, dict] = {v.id: {"org": v.code, "name": v.name, "kind": v.kind,
                                          "township": township_of[v.id].name if township_of[v.id] else "",
                                          "township_code": township_of[v.id].code if township_of[v.id] else "",
                                          "cases": 0, **{k: 0 for k in STATUS_ZH},
                                          "red": 0, "yellow": 0, "blue": 0, "on_time": 0, "late": 0,
                                          "with_due": 0, "rate": None, "overdue_open": 0} for v in villages}
    for org_id, proc, status, n in session.execute(
            select(Case.org_id, Case.procedure_id, Case.status, func.count(Case.id))
            .where(Case.org_id.in_(vids or {-1})).group_by(Case.org_id, Case.procedure_id, Case.status)):
        row = by_proc.setdefault(proc, {"procedure_id": proc, "name": names.get(proc, proc), "total": 0,
                                        **{k: 0 for k in STATUS_ZH}})
        row[status] = row.get(status, 0) + n
        row["total"] += n
        v = by_village[org_id]
        v[status] = v.get(status, 0) + n
        v["cases"] += n
    for org_id, n in session.execute(select(WorkItem.org_id, func.count(WorkItem.id))
                                     .where(WorkItem.org_id.in_(vids or {-1}), WorkItem.due_at.is_not(None),
                                            WorkItem.due_at < now).group_by(WorkItem.org_id)):
        by_village[org_id]["overdue_open"] = n
    steps = completed_steps(session, vids)
    for s in steps:
        v = by_village.get(s.org_id)
        if v is not None and s.due_at:
            v["with_due"] += 1
            v["late" if s.late else "on_time"] += 1
    for v in by_village.values():
        v["rate"] = v["on_time"] / v["with_due"] if v["with_due"] else None
    # open warnings by colour and rule
    from .warnings import RULES, SEVERITIES, OPEN_STATUSES

    by_rule: dict[str, dict] = {}
    severity_totals = {k: 0 for k in SEVERITIES}
    for org_id, rule_id, severity, n in session.execute(
            select(SupervisionWarning.org_id, SupervisionWarning.rule_id, SupervisionWarning.severity,
                   func.count(SupervisionWarning.id))
            .where(SupervisionWarning.org_id.in_(vids or {-1}), SupervisionWarning.status.in_(OPEN_STATUSES))
            .group_by(SupervisionWarning.org_id, SupervisionWarning.rule_id, SupervisionWarning.severity)):
        severity_totals[severity] = severity_totals.get(severity, 0) + n
        by_village[org_id][severity] = by_village[org_id].get(severity, 0) + n
        r = by_rule.setdefault(rule_id, {"rule": rule_id, "name": RULES[rule_id].zh if rule_id in RULES else rule_id,
                                         "severity": severity, "total": 0, "red": 0, "yellow": 0, "blue": 0})
        r[severity] += n
        r["total"] += n
    # trends by month
    month_list = last_months(_month_of(now), months)
    start, _ = month_bounds(month_list[0])
    trend = {m: {"month": m, "started": 0, "closed": 0, "warnings": 0} for m in month_list}
    for (at,) in session.execute(select(Case.created_at).where(Case.org_id.in_(vids or {-1}), Case.created_at >= start)):
        if _month_of(at) in trend:
            trend[_month_of(at)]["started"] += 1
    for (at,) in session.execute(select(Case.closed_at).where(Case.org_id.in_(vids or {-1}),
                                                              Case.closed_at.is_not(None), Case.closed_at >= start)):
        if _month_of(at) in trend:
            trend[_month_of(at)]["closed"] += 1
    for (at,) in session.execute(select(SupervisionWarning.raised_at).where(
            SupervisionWarning.org_id.in_(vids or {-1}), SupervisionWarning.raised_at >= start)):
        if _month_of(at) in trend:
            trend[_month_of(at)]["warnings"] += 1
    # per township: the sum of its villages
    townships: dict[str, dict] = {}
    for v in by_village.values():
        t = townships.setdefault(v["township_code"], {"org": v["township_code"], "name": v["township"], "villages": 0,
                                                      "cases": 0, "running": 0, "red": 0, "yellow": 0, "blue": 0,
                                                      "on_time": 0, "with_due": 0, "rate": None})
        t["villages"] += 1
        for k in ("cases", "running", "red", "yellow", "blue", "on_time", "with_due"):
            t[k] += v.get(k, 0)
    for t in townships.values():
        t["rate"] = t["on_time"] / t["with_due"] if t["with_due"] else None
    return {"villages": sorted(by_village.values(), key=lambda v: (v["township_code"], v["org"])),
            "townships": sorted(townships.values(), key=lambda t: t["org"]),
            "procedures": sorted(by_proc.values(), key=lambda r: (-r["total"], r["procedure_id"])),
            "on_time": on_time_figures(steps), "durations": step_durations(session, steps),
            "severity": severity_totals, "rules": sorted(by_rule.values(), key=lambda r: (-r["total"], r["rule"])),
            "trend": list(trend.values()), "statuses": dict(STATUS_ZH)}


# --- the heat map of a procedure ---------------------------------------------------------------------
def heat(session: Session, procedure_id: str, org_ids: set[int], *, now: datetime | None = None) -> dict:
    """Per step of a procedure (cases of ``org_ids``): average waiting time (completed steps from when
    they opened, open steps until now) and the warnings of its cases, clustered on the step they name
    (``facts.step``) or else on the last step completed before they were raised."""
    now = now or audit.db_time()
    proc = session.get(Procedure, procedure_id)
    if proc is None or proc.current_version_id is None:
        raise NotFound(f"没有事项“{procedure_id}” / no procedure {procedure_id}")
    version = session.get(ProcedureVersion, proc.current_version_id)
    vids = {v.id for v in villages_in(session, org_ids)} | {o for o in org_ids}
    steps = completed_steps(session, vids, procedure_id=procedure_id)
    waits: dict[str, list[float]] = defaultdict(list)
    names: dict[str, str] = {}
    for s in steps:
        if s.seconds is not None:
            waits[s.step].append(s.seconds)
            names[s.step] = s.name
    open_now: dict[str, int] = defaultdict(int)
    for step, name, ready in session.execute(select(WorkItem.step_id, WorkItem.step_name, WorkItem.ready_at)
                                             .where(WorkItem.procedure_id == procedure_id,
                                                    WorkItem.org_id.in_(vids or {-1}))):
        waits[step].append(max((now - ready).total_seconds(), 0.0))
        names.setdefault(step, name)
        open_now[step] += 1
    by_case: dict[int, list[StepDone]] = defaultdict(list)
    for s in steps:
        by_case[s.case_id].append(s)
    clustered: dict[str, dict] = defaultdict(lambda: {"total": 0, "open": 0, "red": 0, "yellow": 0, "blue": 0})
    unplaced = 0
    from .warnings import OPEN_STATUSES

    for wid, case_id, severity, status, raised, facts in session.execute(
            select(SupervisionWarning.id, SupervisionWarning.case_id, SupervisionWarning.severity,
                   SupervisionWarning.status, SupervisionWarning.raised_at, SupervisionWarning.facts)
            .join(Case, Case.id == SupervisionWarning.case_id)
            .where(Case.procedure_id == procedure_id, Case.org_id.in_(vids or {-1}))):
        step = (json.loads(facts) or {}).get("step")
        if not step:
            before = [s for s in by_case.get(case_id, []) if s.completed_at <= raised]
            step = before[-1].step if before else None
        if not step:
            unplaced += 1
            continue
        c = clustered[step]
        c["total"] += 1
        c[severity] = c.get(severity, 0) + 1
        if status in OPEN_STATUSES:
            c["open"] += 1
    rows = []
    for step in set(waits) | set(clustered):
        secs = waits.get(step, [])
        rows.append({"step": step, "name": names.get(step, step), "count": len(secs),
                     "avg_hours": sum(secs) / len(secs) / 3600 if secs else 0.0,
                     "max_hours": max(secs) / 3600 if secs else 0.0, "open": open_now.get(step, 0),
                     "warnings": dict(clustered.get(step, {"total": 0, "open": 0, "red": 0, "yellow": 0, "blue": 0}))})
    top = max((r["avg_hours"] for r in rows), default=0.0)
    for r in rows:
        r["heat"] = r["avg_hours"] / top if top else 0.0
    return {"procedure_id": procedure_id, "name": proc.name, "version": version.version, "bpmn": version.bpmn_xml,
            "steps": sorted(rows, key=lambda r: -r["avg_hours"]), "unplaced_warnings": unplaced}


def heat_svg(data: dict, *, title: str | None = None, wait: Callable[[float], str] | None = None,
             badge: Callable[[str, int, int], str] | None = None, lang: str = "zh") -> str:
    """The procedure's flowchart with steps tinted by average waiting time, each step's average written
    under it and its warnings as a badge on its corner. ``title``, ``wait`` (hours → text) and ``badge``
    (step name, warnings, open warnings → text) word the labels (default: Chinese); ``lang`` the drawing's."""
    from lxml import etree

    from engine.render.diagram import render_svg
    from engine.core.xmlsafe import parse_xml

    root = parse_xml(data["bpmn"].encode("utf-8") if isinstance(data["bpmn"], str) else data["bpmn"])
    tint = {r["step"]: r["heat"] for r in data["steps"] if r["count"]}
    svg = etree.fromstring(render_svg(root, heat=tint, title=title or f"{data['name']} · 热力图",
                                      lang=lang).encode("utf-8"))
    ns = "http://www.w3.org/2000/svg"
    bounds: dict[str, tuple[float, float, float, float]] = {}
    for shape in root.iter("{http://www.omg.org/spec/BPMN/20100524/DI}BPMNShape"):
        b = shape.find("{http://www.omg.org/spec/DD/20100524/DC}Bounds")
        if b is not None:
            bounds[shape.get("bpmnElement", "")] = (float(b.get("x")), float(b.get("y")), float(b.get("width")),
                                                    float(b.get("height")))
    layer = etree.SubElement(svg, f"{{{ns}}}g", {"class": "heat-overlay"})
    for r in data["steps"]:
        box = bounds.get(r["step"])
        if box is None:
            continue
        x, y, w, h = box
        if r["count"]:
            text = etree.SubElement(layer, f"{{{ns}}}text", {
                "x": f"{x + w / 2:.1f}", "y": f"{y + h + 13:.1f}", "text-anchor": "middle", "class": "heat-wait",
                "font-size": "11", "fill": "#7c2d12", "stroke": "#fff", "stroke-width": "3",
                "paint-order": "stroke"})
            text.text = wait(r["avg_hours"]) if wait else f"平均{format_hours(r['avg_hours'])}"
        n = r["warnings"]["total"]
        if n:
            colour = "#c62828" if r["warnings"].get("red") else "#e08a00" if r["warnings"].get("yellow") else "#1e6fd9"
            g = etree.SubElement(layer, f"{{{ns}}}g", {"class": "heat-badge", "data-step": r["step"],
                                                       "data-warnings": str(n)})
            tip = etree.SubElement(g, f"{{{ns}}}title")
            tip.text = (badge(r["name"], n, r["warnings"]["open"]) if badge else
                        f"{r['name']}:预警{n}条(未办结{r['warnings']['open']}条)")
            etree.SubElement(g, f"{{{ns}}}circle", {"cx": f"{x + w - 2:.1f}", "cy": f"{y + 2:.1f}", "r": "11",
                                                    "fill": colour, "stroke": "#fff", "stroke-width": "2"})
            label = etree.SubElement(g, f"{{{ns}}}text", {"x": f"{x + w - 2:.1f}", "y": f"{y + 6:.1f}",
                                                          "text-anchor": "middle", "font-size": "11",
                                                          "font-weight": "700", "fill": "#fff"})
            label.text = str(n)
    return etree.tostring(svg, encoding="unicode")


def format_hours(hours: float) -> str:
    if hours >= 48:
        return f"{hours / 24:.1f}天"
    if hours >= 1:
        return f"{hours:.1f}小时"
    return f"{max(hours * 60, 0):.0f}分钟"


# --- the cadre file (廉情档案) -------------------------------------------------------------------------
def _assignments(session: Session, username: str) -> list[tuple[str, int]]:
    return [(r, o) for r, o in session.execute(select(RoleAssignment.role_key, RoleAssignment.org_id)
                                               .join(User, User.id == RoleAssignment.user_id)
                                               .where(User.username == username))]


def supervisor_scope(session: Session, actor: directory.Actor) -> set[int]:
    """Organizations whose cadres the actor supervises: the subtrees of their supervisor roles."""
    return directory.descendants(session, {oid for role, oid in actor.assignments if role in SUPERVISOR_ROLES})


def may_supervise(actor: directory.Actor | None) -> bool:
    return actor is not None and any(role in SUPERVISOR_ROLES for role, _ in actor.assignments)


def cadre_org(session: Session, actor: directory.Actor, username: str) -> Organization:
    """The organization (the cadre's village, or above) through which ``actor`` supervises the cadre;
    NotFound when the cadre holds no role there (the same answer as for no such user)."""
    scope = supervisor_scope(session, actor)
    held = [oid for _, oid in _assignments(session, username) if oid in scope]
    if not held or username == actor.username:
        if not held and not may_supervise(actor):
            raise Forbidden(f"{actor.username} 不是监督人员 / {actor.username} is not a supervisor", action="cadre_file")
        raise NotFound(f"没有干部“{username}”的档案 / no file for {username}")
    orgs = orgs_in(session, held)
    return sorted(orgs, key=lambda o: (o.kind not in VILLAGE_KINDS, o.code))[0]


def list_cadres(session: Session, actor: directory.Actor) -> list[dict]:
    """Cadres (users holding a role) in the actor's supervision scope, by village, with their open
    warnings and notes."""
    scope = supervisor_scope(session, actor)
    orgs = {o.id: o for o in orgs_in(session, scope)}
    roles = catalogue.roles()
    people: dict[tuple[int, str], dict] = {}
    for username, display, role, org_id in session.execute(
            select(User.username, User.display_name, RoleAssignment.role_key, RoleAssignment.org_id)
            .join(RoleAssignment, RoleAssignment.user_id == User.id)
            .where(RoleAssignment.org_id.in_(scope or {-1}), User.active.is_(True))):
        if username == actor.username or role == "applicant":
            continue
        p = people.setdefault((org_id, username), {"username": username, "name": display or username,
                                                   "org": orgs[org_id].code, "org_name": orgs[org_id].name,
                                                   "org_kind": orgs[org_id].kind, "roles": [],
                                                   "warnings": 0, "notes": 0})
        p["roles"].append(roles[role].zh if role in roles else role)
    names = {u for _, u in people}
    from .warnings import OPEN_STATUSES

    counts = dict(session.execute(select(SupervisionNote.subject, func.count(SupervisionNote.id))
                                  .where(SupervisionNote.subject.in_(names or {""})).group_by(SupervisionNote.subject)).all())
    from storage.models import WarningSubject

    warned = dict(session.execute(select(WarningSubject.subject, func.count(WarningSubject.id))
                                  .join(SupervisionWarning, SupervisionWarning.id == WarningSubject.warning_id)
                                  .where(WarningSubject.subject.in_(names or {""}),
                                         SupervisionWarning.status.in_(OPEN_STATUSES))
                                  .group_by(WarningSubject.subject)).all())
    for p in people.values():
        p["notes"] = counts.get(p["username"], 0)
        p["warnings"] = warned.get(p["username"], 0)
        p["roles"] = sorted(p["roles"])
    return sorted(people.values(), key=lambda p: (p["org_kind"] not in VILLAGE_KINDS, p["org"], p["username"]))


def cadre_file(session: Session, actor: directory.Actor, username: str) -> dict:
    """The cadre file: roles, cases handled, steps on time and late, warnings involving them and how
    they ended, supervisors' notes."""
    org = cadre_org(session, actor, username)
    user = directory.get_user(session, username)
    roles = catalogue.roles()
    codes = {o.id: (o.code, o.name) for o in session.scalars(select(Organization))}
    assignments = [{"role": r, "role_zh": roles[r].zh if r in roles else r, "org": codes[o][0], "org_name": codes[o][1]}
                   for r, o in _assignments(session, username)]
    names = dict(session.execute(select(Procedure.id, Procedure.name)).all())
    from engine.core.cases import STATUS_ZH

    handled = session.execute(
        select(Case.id, Case.title, Case.procedure_id, Case.status, Case.created_at, func.count(AuditEvent.id))
        .join(AuditEvent, AuditEvent.case_id == Case.id)
        .where(AuditEvent.actor == username, AuditEvent.type.in_(("case_started", "step_completed")))
        .group_by(Case.id, Case.title, Case.procedure_id, Case.status, Case.created_at)
        .order_by(Case.id.desc())).all()
    cases = [{"id": cid, "title": title, "procedure_id": proc, "procedure_name": names.get(proc, proc),
              "status": status, "status_zh": STATUS_ZH.get(status, status), "created_at": audit.iso(created),
              "actions": n} for cid, title, proc, status, created, n in handled]
    steps = completed_steps(session, actor=username)
    late = [{"case_id": s.case_id, "step": s.step, "name": s.name, "due_at": s.due_at,
             "completed_at": audit.iso(s.completed_at)} for s in steps if s.late]
    from .warnings import STATUSES, list_warnings

    warned = list_warnings(session, subject=username, limit=200)
    outcome = {k: 0 for k in STATUSES}
    for w in warned["warnings"]:
        outcome[w["status"]] = outcome.get(w["status"], 0) + 1
    notes = [note_dict(n) for n in session.scalars(select(SupervisionNote).where(SupervisionNote.subject == username)
                                                   .order_by(SupervisionNote.at.desc(), SupervisionNote.id.desc()))]
    return {"username": username, "name": user.display_name or username, "org": org.code, "org_name": org.name,
            "assignments": assignments, "cases": cases, "steps": on_time_figures(steps), "steps_total": len(steps),
            "late_steps": late, "warnings": warned["warnings"], "warnings_total": warned["total"],
            "warning_outcomes": outcome, "notes": notes}


def note_dict(n: SupervisionNote) -> dict:
    return {"id": n.id, "author": n.author, "subject": n.subject, "kind": n.kind,
            "kind_zh": NOTE_KINDS.get(n.kind, n.kind), "text": n.text, "responsibilities": n.responsibilities,
            "problems": n.problems, "risks": n.risks, "at": audit.iso(n.at)}


def record_note(session: Session, username: str, subject: str, kind: str, text: str = "", *,
                responsibilities: str = "", problems: str = "", risks: str = "") -> dict:
    """A supervisor records a talk, a notice, the three lists (三交底) or another note about a cadre of
    their village or below; audited as ``supervision_note_recorded`` in the system chain (with the
    SHA-256 of the content: the text stays in the cadre file only)."""
    actor = directory.load_actor(session, username)
    if kind not in NOTE_KINDS:
        raise InvalidData(f"未知记录类别 {kind} / unknown kind", {"kind": ", ".join(NOTE_KINDS)})
    text, responsibilities, problems, risks = ((v or "").strip() for v in (text, responsibilities, problems, risks))
    errors = {}
    if kind == "three_lists":
        for name, value in (("responsibilities", responsibilities), ("problems", problems), ("risks", risks)):
            if not value:
                errors[name] = "三交底须填写责任清单、问题清单和风险清单 / required"
    elif not text:
        errors["text"] = "须填写内容 / required"
    for name, value in (("text", text), ("responsibilities", responsibilities), ("problems", problems), ("risks", risks)):
        if len(value) > 4000:
            errors[name] = "不能超过4000字 / at most 4000 characters"
    if errors:
        raise InvalidData("记录不完整 / the note is incomplete", errors)
    org = cadre_org(session, actor, subject)
    held = actor.roles_at(directory.chain_ids(session, org.id)) & SUPERVISOR_ROLES
    now = audit.db_time()
    note = SupervisionNote(org_id=org.id, author=username, subject=subject, kind=kind, text=text,
                           responsibilities=responsibilities, problems=problems, risks=risks, at=now)
    session.add(note)
    session.flush()
    content = json.dumps([text, responsibilities, problems, risks], ensure_ascii=False)
    audit.append_system_event(session, "supervision_note_recorded", actor=username, role=sorted(held)[0] if held else "",
                              data={"id": note.id, "subject": subject, "kind": kind, "org": org.code,
                                    "content_sha256": hashlib.sha256(content.encode("utf-8")).hexdigest()})
    return note_dict(note)


# --- village grades ------------------------------------------------------------------------------------
def grades(session: Session, month: str, org_ids: set[int] | None = None, *, now: datetime | None = None) -> list[dict]:
    """A score and grade (A–D) per village or community for a month, from local weights and thresholds
    (``grade_*`` parameters, set at the district, township or village like every parameter)."""
    from .warnings import ScanContext

    now = now or audit.db_time()
    start, end = month_bounds(month)
    cut = min(end, now + timedelta(seconds=1))  # a month still running: up to now
    ctx = ScanContext(session, now=now)
    query = select(Organization).where(Organization.kind.in_(VILLAGE_KINDS))
    if org_ids is not None:
        query = query.where(Organization.id.in_(org_ids or {-1}))
    villages = list(session.scalars(query.order_by(Organization.code)))
    vids = {v.id for v in villages}
    open_at: dict[int, dict[str, int]] = defaultdict(lambda: {"red": 0, "yellow": 0, "blue": 0})
    disclosure: dict[int, int] = defaultdict(int)
    year_before = (cut + LOCAL).date() - timedelta(days=365)
    for org_id, rule_id, severity, status, raised, updated, facts in session.execute(
            select(SupervisionWarning.org_id, SupervisionWarning.rule_id, SupervisionWarning.severity,
                   SupervisionWarning.status, SupervisionWarning.raised_at, SupervisionWarning.updated_at,
                   SupervisionWarning.facts)
            .where(SupervisionWarning.org_id.in_(vids or {-1}), SupervisionWarning.raised_at < cut)):
        if status in ("raised", "acknowledged") or updated >= cut:
            open_at[org_id][severity] = open_at[org_id].get(severity, 0) + 1
        if rule_id == "WR-21" and status != "dismissed":
            deadline = (json.loads(facts) or {}).get("deadline")
            try:
                due = date.fromisoformat(deadline) if deadline else None
            except ValueError:
                due = None
            if due is not None and year_before < due <= (cut + LOCAL).date():
                disclosure[org_id] += 1
    steps_in = [s for s in completed_steps(session, vids) if start <= s.completed_at < cut and s.due_at]
    with_due: dict[int, int] = defaultdict(int)
    late: dict[int, int] = defaultdict(int)
    for s in steps_in:
        with_due[s.org_id] += 1
        late[s.org_id] += s.late
    for org_id, n in session.execute(select(WorkItem.org_id, func.count(WorkItem.id))
                                     .where(WorkItem.org_id.in_(vids or {-1}), WorkItem.due_at.is_not(None),
                                            WorkItem.due_at < cut, WorkItem.ready_at < cut)
                                     .group_by(WorkItem.org_id)):
        with_due[org_id] += n  # still open past the time limit: late
        late[org_id] += n
    out = []
    for v in villages:
        p = {k: ctx.param(v.id, k) for k in ("grade_weight_red", "grade_weight_yellow", "grade_weight_blue",
                                              "grade_weight_overdue", "grade_weight_disclosure", "grade_a_min",
                                              "grade_b_min", "grade_c_min")}
        counts = open_at[v.id]
        rate = late[v.id] / with_due[v.id] if with_due[v.id] else 0.0
        deductions = {"red": counts["red"] * p["grade_weight_red"], "yellow": counts["yellow"] * p["grade_weight_yellow"],
                      "blue": counts["blue"] * p["grade_weight_blue"], "overdue": round(rate * p["grade_weight_overdue"], 1),
                      "disclosure": disclosure[v.id] * p["grade_weight_disclosure"]}
        score = round(max(0.0, 100.0 - float(sum(deductions.values()))), 1)
        grade = "A" if score >= p["grade_a_min"] else "B" if score >= p["grade_b_min"] else \
            "C" if score >= p["grade_c_min"] else "D"
        capped = ""
        if grade == "A" and counts["red"]:  # never A with an open red warning, whatever the weights
            grade, capped = "B", f"有{counts['red']}条未办结的红色预警,不评A级"
        out.append({"org": v.code, "org_name": v.name, "org_id": v.id, "month": month, "score": score, "grade": grade,
                    "capped": capped,
                    "open_warnings": dict(counts), "overdue_rate": round(rate, 4), "steps_with_due": with_due[v.id],
                    "steps_late": late[v.id], "disclosure_overdue": disclosure[v.id],
                    "deductions": {k: float(x) for k, x in deductions.items()},
                    "weights": {k: int(x) for k, x in p.items()}})
    return out


def _claim(session: Session, kind: str, org_id: int, period: str, detail: dict) -> PeriodicCase | None:
    """Claim (kind, org, period) once: the new row, or None when it was claimed already."""
    if session.scalar(select(PeriodicCase.id).where(PeriodicCase.kind == kind, PeriodicCase.org_id == org_id,
                                                    PeriodicCase.period == period)) is not None:
        return None
    row = PeriodicCase(kind=kind, org_id=org_id, period=period, case_id=None, detail=audit.to_json(detail),
                       created_at=audit.db_time())
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # another process claimed it at the same moment
        return None
    return row


def _problems(g: dict) -> str:
    parts = []
    w = g["open_warnings"]
    if any(w.values()):
        parts.append(f"未办结预警:红色{w['red']}条、黄色{w['yellow']}条、蓝色{w['blue']}条")
    if g["steps_late"]:
        parts.append(f"环节超时{g['steps_late']}个(超时率{g['overdue_rate']:.0%})")
    if g["disclosure_overdue"]:
        parts.append(f"近一年季度财务公开逾期{g['disclosure_overdue']}次")
    return ";".join(parts) or "综合得分低于等级标准"


def issue_notices(session: Session, graded: list[dict]) -> list[dict]:
    """For every C or D grade, start a notice case (B-SUP-02) at the village, at most once per village
    and month: 预警通知书 for C, 整改通知书 for D."""
    from engine.core import cases

    issued = []
    for g in graded:
        if g["grade"] not in NOTICE_KINDS:
            continue
        kind, label = NOTICE_KINDS[g["grade"]]
        row = _claim(session, "grade_notice", g["org_id"], g["month"], {"grade": g["grade"], "score": g["score"]})
        if row is None:
            continue
        case = cases.start_case(session, NOTICE_PROCEDURE, g["org"], "system", {
            "title": f"{g['month']} {label}({g['org_name']},{g['grade']}级 {g['score']}分)",
            "notice_kind": kind, "grade_month": g["month"], "grade": g["grade"], "problems": _problems(g),
            "requirements": "对照主要问题逐项整改，15个工作日内书面报告整改情况。"}, scheduled=True)
        row.case_id = case.id
        session.flush()
        issued.append({"org": g["org"], "grade": g["grade"], "notice": label, "case_id": case.id})
    return issued


# --- the monthly checklist -------------------------------------------------------------------------------
def start_monthly(session: Session, month: str, org_codes: Iterable[str] | None = None) -> list[dict]:
    """Start the liaison station's monthly checklist (B-SUP-01) for every village and community (or
    those named) that has none for ``month``: idempotent, once per organization and month."""
    from engine.core import cases

    query = select(Organization).where(Organization.kind.in_(VILLAGE_KINDS))
    if org_codes is not None:
        query = query.where(Organization.code.in_(list(org_codes)))
    started = []
    for org in session.scalars(query.order_by(Organization.code)).all():
        row = _claim(session, "monthly_check", org.id, month, {})
        if row is None:
            continue
        case = cases.start_case(session, MONTHLY_PROCEDURE, org.code, "system",
                                {"title": f"{month} 月度监督检查({org.name})"}, scheduled=True)
        row.case_id = case.id
        session.flush()
        started.append({"org": org.code, "org_name": org.name, "month": month, "case_id": case.id})
    return started


def periodic_cases(session: Session, kind: str, period: str | None = None) -> list[dict]:
    query = select(PeriodicCase, Organization.code).join(Organization, Organization.id == PeriodicCase.org_id) \
        .where(PeriodicCase.kind == kind)
    if period:
        query = query.where(PeriodicCase.period == period)
    return [{"org": code, "period": p.period, "case_id": p.case_id, "detail": json.loads(p.detail or "{}")}
            for p, code in session.execute(query.order_by(PeriodicCase.period, Organization.code))]
