"""The application facade: one method per user action, each its own transaction.

The command line and the web app call only this. It opens the transactions, records refused
attempts in the case trail (after rolling the attempt back), fires due timers before a case is
read, and answers lists from the derived tables.
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from sqlalchemy import bindparam, func, select

from . import audit, cases, directory, procedures
from .errors import Forbidden, NotFound
from storage import Database
from storage.models import AuditEvent, Case, Organization, Procedure, ProcedureVersion, TimerDue, WorkItem


class Xiaowei:
    """Xiaowei on one database."""

    def __init__(self, db: Database):
        self.db = db

    # --- set-up -------------------------------------------------------------------------
    def init(self, *, actor: str = "system") -> list[dict]:
        self.db.upgrade()
        with self.db.write() as s:
            return procedures.publish_directory(s, actor=actor)

    # --- cases --------------------------------------------------------------------------
    def start_case(self, procedure_id: str, org_code: str, username: str, data: Mapping[str, Any] | None = None) -> int:
        with self.db.write() as s:
            case = cases.start_case(s, procedure_id, org_code, username, data)
            return case.id

    def complete(self, case_id: int, step_id: str, username: str, data: Mapping[str, Any] | None = None, *,
                 on_behalf_of: str | None = None, proxy_reason: str | None = None) -> dict:
        try:
            with self.db.write() as s:
                case = cases.complete_step(s, case_id, step_id, username, data,
                                           on_behalf_of=on_behalf_of, proxy_reason=proxy_reason)
                status = case.status
                tasks = _tasks(s, case_id)
        except Forbidden as exc:
            self._record_denied(case_id, username, exc)
            raise
        return {"case_id": case_id, "status": status, "tasks": tasks}

    def cancel(self, case_id: int, username: str, reason: str) -> str:
        try:
            with self.db.write() as s:
                return cases.cancel_case(s, case_id, username, reason).status
        except Forbidden as exc:
            self._record_denied(case_id, username, exc)
            raise

    def _record_denied(self, case_id: int, username: str, exc: Forbidden) -> None:
        with self.db.write() as s:
            cases.record_denied(s, case_id, username, str(exc.details.get("action", "")), exc.message,
                                {k: v for k, v in exc.details.items() if k != "action"})

    def fire_due(self, case_id: int) -> None:
        """Fire a case's due timers if it has any (reading a case shows its true state)."""
        with self.db.read() as s:
            due = s.scalar(select(TimerDue.id).where(TimerDue.case_id == case_id,
                                                     TimerDue.due_at <= audit.db_time()).limit(1))
        if due is not None:
            with self.db.write() as s:
                cases.open_for_update(s, case_id)

    def tick(self, *, limit: int = 10_000) -> dict:
        """Fire every due timer; safe to run from several processes at once."""
        now = audit.db_time()
        with self.db.read() as s:
            ids = list(s.scalars(select(TimerDue.case_id).where(TimerDue.due_at <= now)
                                 .group_by(TimerDue.case_id).order_by(func.min(TimerDue.due_at)).limit(limit)))
        fired, skipped, events = 0, 0, 0
        for case_id in ids:
            with self.db.write() as s:
                result = cases.fire_due_timers(s, case_id)
            if result is None:
                skipped += 1
            elif result:
                fired += 1
                events += result
        return {"now": audit.iso(now), "due_cases": len(ids), "cases_advanced": fired, "skipped_locked": skipped,
                "events": events}

    # --- reads --------------------------------------------------------------------------
    def tasks(self, case_id: int, *, fire: bool = True) -> list[dict]:
        if fire:
            self.fire_due(case_id)
        with self.db.read() as s:
            if s.get(Case, case_id) is None:
                raise NotFound(f"没有编号为 {case_id} 的事项 / no case {case_id}")
            return _tasks(s, case_id)

    def show_case(self, case_id: int) -> dict:
        self.fire_due(case_id)
        with self.db.read() as s:
            case = s.get(Case, case_id)
            if case is None:
                raise NotFound(f"没有编号为 {case_id} 的事项 / no case {case_id}")
            org = s.get(Organization, case.org_id)
            version = s.get(ProcedureVersion, case.procedure_version_id)
            proc = s.get(Procedure, case.procedure_id)
            items = s.scalars(select(WorkItem).where(WorkItem.case_id == case_id).order_by(WorkItem.id)).all()
            timers = s.scalars(select(TimerDue).where(TimerDue.case_id == case_id)).all()
            history = [audit.event_dict(e) for e in audit.case_events(s, case_id)]
            return {
                "id": case.id, "title": case.title, "procedure_id": case.procedure_id,
                "procedure_name": proc.name if proc else "", "procedure_version": version.version if version else None,
                "org": org.code if org else None, "org_name": org.name if org else "",
                "status": case.status, "status_zh": cases.STATUS_ZH.get(case.status, case.status),
                "tracking_code": cases.format_tracking_code(case.tracking_code),
                "started_by": case.started_by, "created_at": audit.iso(case.created_at),
                "updated_at": audit.iso(case.updated_at),
                "closed_at": audit.iso(case.closed_at) if case.closed_at else None,
                "current_steps": [_work_item_dict(w) for w in items],
                "timers": [{"node": t.node_id, "due_at": audit.iso(t.due_at)} for t in timers],
                "history": history,
            }

    def list_cases(self, *, org_code: str | None = None, status: str | None = None, limit: int = 500) -> list[dict]:
        with self.db.read() as s:
            query = (select(Case, Organization.code, Procedure.name)
                     .join(Organization, Organization.id == Case.org_id)
                     .join(Procedure, Procedure.id == Case.procedure_id))
            if org_code:
                org = directory.get_org(s, org_code)
                query = query.where(Case.org_id.in_(directory.descendants(s, [org.id])))
            if status:
                query = query.where(Case.status == status)
            rows = s.execute(query.order_by(Case.id.desc()).limit(limit)).all()
            return [{"id": c.id, "title": c.title, "procedure_id": c.procedure_id, "procedure_name": pname,
                     "org": code, "status": c.status, "status_zh": cases.STATUS_ZH.get(c.status, c.status),
                     "tracking_code": cases.format_tracking_code(c.tracking_code),
                     "created_at": audit.iso(c.created_at), "updated_at": audit.iso(c.updated_at)}
                    for c, code, pname in rows]

    def verify(self, case_id: int | None = None) -> list[audit.ChainReport]:
        with self.db.read() as s:
            if case_id is not None and s.get(Case, case_id) is None:
                raise NotFound(f"没有编号为 {case_id} 的事项 / no case {case_id}")
            return audit.verify(s, case_id)

    def export_trail(self, case_id: int) -> str:
        with self.db.read() as s:
            return audit.export_trail(s, case_id)

    def audit_event_count(self) -> int:
        with self.db.read() as s:
            return s.scalar(select(func.count()).select_from(AuditEvent)) or 0


_TASK_COLUMNS = (WorkItem.case_id, WorkItem.step_id, WorkItem.step_name, WorkItem.role_key, WorkItem.task_id,
                 WorkItem.ready_at, WorkItem.due_at)


_TASKS_QUERY = select(*_TASK_COLUMNS).where(WorkItem.case_id == bindparam("case_id")).order_by(WorkItem.id)


def _tasks(session, case_id: int) -> list[dict]:
    """Open steps of a case from the derived table (plain rows, no ORM objects)."""
    rows = session.connection().execute(_TASKS_QUERY, {"case_id": case_id}).all()
    return [_work_item_dict(r) for r in rows]


def _work_item_dict(w) -> dict:
    now = audit.db_time()
    return {"case_id": w.case_id, "step_id": w.step_id, "name": w.step_name, "role": w.role_key,
            "task_id": w.task_id, "ready_at": audit.iso(w.ready_at),
            "due_at": audit.iso(w.due_at) if w.due_at else None,
            "overdue": bool(w.due_at and w.due_at < now)}


def dumps(data: Any) -> str:
    """JSON for the command line (Chinese kept readable)."""
    return json.dumps(data, ensure_ascii=False, indent=2, default=str)

