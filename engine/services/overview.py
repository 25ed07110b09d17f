"""镇街总览: for township staff and district administrators, every case in their villages by
procedure and status, the villages and procedures with overdue work first. Read only from the
``case_instance`` and ``work_item`` tables (never deserializes a case)."""

from __future__ import annotations

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from engine.core import audit, directory
from engine.core.cases import STATUS_ZH
from engine.core.directory import Actor
from storage.models import Case, Organization, Procedure, WorkItem

OVERVIEW_ROLES = frozenset({"township_staff", "township_government", "district_admin"})


def may_see_overview(actor: Actor | None) -> bool:
    return actor is not None and any(role in OVERVIEW_ROLES for role, _ in actor.assignments)


def overview_rows(session: Session, actor: Actor) -> list[dict]:
    """One row per (village, procedure) with cases: counts by status and running cases with overdue work."""
    org_ids = directory.descendants(session, {oid for role, oid in actor.assignments if role in OVERVIEW_ROLES})
    villages = {o.id: o for o in session.scalars(select(Organization).where(Organization.id.in_(org_ids)))
                if o.kind in ("village", "community")}
    if not villages:
        return []
    names = dict(session.execute(select(Procedure.id, Procedure.name)).all())
    rows: dict[tuple[int, str], dict] = {}

    def row(org_id: int, procedure_id: str) -> dict:
        key = (org_id, procedure_id)
        if key not in rows:
            org = villages[org_id]
            rows[key] = {"org": org.code, "org_name": org.name, "procedure_id": procedure_id,
                         "procedure_name": names.get(procedure_id, procedure_id), "overdue": 0, "total": 0,
                         **{status: 0 for status in STATUS_ZH}}
        return rows[key]

    counts = session.execute(select(Case.org_id, Case.procedure_id, Case.status, func.count(Case.id))
                             .where(Case.org_id.in_(villages))
                             .group_by(Case.org_id, Case.procedure_id, Case.status))
    for org_id, procedure_id, status, n in counts:
        r = row(org_id, procedure_id)
        r[status] = r.get(status, 0) + n
        r["total"] += n
    now = audit.db_time()
    late = session.execute(select(Case.org_id, Case.procedure_id, func.count(distinct(Case.id)))
                           .join(WorkItem, WorkItem.case_id == Case.id)
                           .where(Case.org_id.in_(villages), Case.status == "running",
                                  WorkItem.due_at.is_not(None), WorkItem.due_at < now)
                           .group_by(Case.org_id, Case.procedure_id))
    for org_id, procedure_id, n in late:
        row(org_id, procedure_id)["overdue"] = n
    return sorted(rows.values(), key=lambda r: (-r["overdue"], -r["running"], r["org"], r["procedure_id"]))
