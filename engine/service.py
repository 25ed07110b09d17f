"""The application facade: one method per user action, each its own transaction.

The command line and the web app call only this. It opens the transactions, records refused
attempts in the case trail (after rolling the attempt back), fires due timers before a case is
read, and answers lists from the derived tables.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Mapping

from sqlalchemy import bindparam, func, select

from . import attachments, audit, cases, catalogue, directory, dossier, narrative, procedures
from .errors import Forbidden, NotFound
from storage import Database
from storage.models import AuditEvent, Case, Organization, Procedure, ProcedureVersion, TimerDue, WorkItem

ANALYZE_EVERY = timedelta(hours=1)


class Xiaowei:
    """Xiaowei on one database."""

    def __init__(self, db: Database):
        self.db = db
        self._last_analyze = None  # when tick last refreshed SQLite's planner statistics

    # --- set-up -------------------------------------------------------------------------
    def init(self, *, actor: str = "system") -> list[dict]:
        self.db.upgrade()
        with self.db.write() as s:
            return procedures.publish_directory(s, actor=actor)

    # --- cases --------------------------------------------------------------------------
    def start_case(self, procedure_id: str, org_code: str, username: str, data: Mapping[str, Any] | None = None) -> int:
        with self.db.write() as s:
            case = cases.start_case(s, procedure_id, org_code, username, data)
            case_id = case.id
        self._warn(case_id)
        return case_id

    def complete(self, case_id: int, step_id: str, username: str, data: Mapping[str, Any] | None = None, *,
                 on_behalf_of: str | None = None, proxy_reason: str | None = None,
                 attachments: list[dict] | None = None) -> dict:
        try:
            with self.db.write() as s:
                case = cases.complete_step(s, case_id, step_id, username, data,
                                           on_behalf_of=on_behalf_of, proxy_reason=proxy_reason,
                                           attachments=attachments)
                status = case.status
                tasks = _tasks(s, case_id)
        except Forbidden as exc:
            self._record_denied(case_id, username, exc)
            raise
        self._warn(case_id)
        return {"case_id": case_id, "status": status, "tasks": tasks}

    # --- evidence files -----------------------------------------------------------------
    def store_files(self, files: list[tuple[str | None, bytes]], username: str) -> list[dict]:
        """Check and store evidence files (all or none); their references for :meth:`complete`."""
        with self.db.write() as s:
            return attachments.store_many(s, files, username)

    def file_owners(self, hashes: list[str]) -> dict[str, str]:
        """sha256 → the user who first stored that file (for the hashes that exist)."""
        with self.db.read() as s:
            return attachments.owners(s, hashes)

    def load_file(self, sha256: str) -> tuple[str, bytes]:
        """(media type, content) of a stored file."""
        with self.db.read() as s:
            blob = attachments.load(s, sha256)
            return blob.media_type, bytes(blob.content)

    def cancel(self, case_id: int, username: str, reason: str) -> str:
        try:
            with self.db.write() as s:
                status = cases.cancel_case(s, case_id, username, reason).status
            self._warn(case_id)
            return status
        except Forbidden as exc:
            self._record_denied(case_id, username, exc)
            raise

    # --- the public (no account) -------------------------------------------------------
    def file_objection(self, tracking_code: str, text: str, name: str | None = None,
                       phone: str | None = None) -> dict:
        """A member of the public objects to what a case has on notice (only during the notice period)."""
        with self.db.write() as s:
            return cases.file_objection(s, tracking_code, text, name=name, phone=phone)

    def report(self, org_code: str, text: str, *, topic: str, name: str | None = None, phone: str | None = None,
               files: list[tuple[str | None, bytes]] | None = None) -> dict:
        """码上举报: start a case of the township's complaint-handling procedure (T-SUP-01) about the
        village or community ``org_code``, as the public; its tracking code."""
        from . import public

        with self.db.write() as s:
            return public.file_report(s, org_code, text, topic=topic, name=name, phone=phone, files=files)

    # --- supervision warnings (engine.warnings) -------------------------------------------
    def _warn(self, case_id: int) -> list[dict]:
        """The incremental evaluation right after a change of a case (its own transaction; a failure
        is logged, never undoes the change: the next scan finds what it missed)."""
        from . import warnings

        try:
            with self.db.write() as s:
                return warnings.evaluate_case(s, case_id)
        except Exception:  # noqa: BLE001 - warnings must never break the engine
            warnings.log.exception("warning evaluation failed for case %s", case_id)
            return []

    def _warn_timed(self) -> None:
        """Rules that depend on the passing of time (overdue steps, stalled cases, quarterly disclosure)."""
        from . import warnings

        try:
            with self.db.write() as s:
                warnings.evaluate(s, rules=warnings.TIMED_RULES)
        except Exception:  # noqa: BLE001
            warnings.log.exception("timed warning evaluation failed")

    def scan_warnings(self, rules: list[str] | None = None) -> list[dict]:
        from . import warnings

        with self.db.write() as s:
            return warnings.scan(s, rules=rules)

    def list_warnings(self, **filters: Any) -> dict:
        from . import warnings

        with self.db.read() as s:
            return warnings.list_warnings(s, **filters)

    def show_warning(self, warning_id: int, username: str | None = None) -> dict:
        from . import warnings

        with self.db.read() as s:
            actor = directory.load_actor(s, username) if username else None
            return warnings.get_warning(s, warning_id, actor)

    def handle_warning(self, warning_id: int, action: str, username: str, opinion: str) -> dict:
        from . import warnings

        with self.db.write() as s:
            return warnings.handle(s, warning_id, action, username, opinion)

    def supervise_warning(self, warning_id: int, username: str, opinion: str) -> dict:
        from . import warnings

        with self.db.write() as s:
            result = warnings.supervise(s, warning_id, username, opinion)
        self._warn(result["supervision_case_id"])
        return result

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
                self._warn(case_id)
        self._warn_timed()
        with self.db.write() as s:
            promoted = procedures.promote_effective(s)
        if self._last_analyze is None or now - self._last_analyze >= ANALYZE_EVERY:
            self.db.analyze()  # SQLite's planner statistics follow the data as it grows
            self._last_analyze = now
        result = {"now": audit.iso(now), "due_cases": len(ids), "cases_advanced": fired, "skipped_locked": skipped,
                  "events": events}
        if promoted:
            result["versions_effective"] = promoted
        result.update(self._start_of_month(now))
        return result

    # --- supervision (engine.supervision): scheduled cases, grades, notes ---------------------------
    def _start_of_month(self, now) -> dict:
        """On the first day of a month (China time) tick starts the month's checklists and grades the
        month before (notices for C and D); both are idempotent. A failure is logged, never raised."""
        from . import supervision

        if (now + supervision.LOCAL).day != 1:
            return {}
        try:
            month = supervision.parse_month(None, now)
            started = self.supervision_monthly(month)
            notices = self.grade_villages(supervision.previous_month(month), notify=True)["notices"]
            return {"monthly_started": len(started), "grade_notices": len(notices)}
        except Exception:  # noqa: BLE001 - scheduled work must never break tick
            from . import warnings

            warnings.log.exception("start-of-month supervision failed")
            return {}

    def supervision_monthly(self, month: str | None = None, org_codes: list[str] | None = None) -> list[dict]:
        """Start the monthly checklist (B-SUP-01) for every village and community without one this month."""
        from . import supervision

        with self.db.write() as s:
            started = supervision.start_monthly(s, supervision.parse_month(month), org_codes)
        for item in started:
            self._warn(item["case_id"])
        return started

    def grade_villages(self, month: str | None = None, *, notify: bool = False, org_code: str | None = None) -> dict:
        """Grades of every village and community for a month; with ``notify`` a notice case for C and D."""
        from . import supervision

        month = supervision.parse_month(month)
        with self.db.write() as s:
            ids = directory.descendants(s, [directory.get_org(s, org_code).id]) if org_code else None
            graded = supervision.grades(s, month, ids)
            notices = supervision.issue_notices(s, graded) if notify else []
        for item in notices:
            self._warn(item["case_id"])
        return {"month": month, "grades": graded, "notices": notices}

    def record_note(self, username: str, subject: str, kind: str, text: str = "", **lists: str) -> dict:
        from . import supervision

        with self.db.write() as s:
            return supervision.record_note(s, username, subject, kind, text, **lists)

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
        """The verifiable JSON trail; each event also carries its plain-Chinese ``text`` (outside the
        hashed content, so it explains without being part of what is proved)."""
        with self.db.read() as s:
            case = s.get(Case, case_id)
            if case is None:
                raise NotFound(f"没有编号为 {case_id} 的事项 / no case {case_id}")
            ctx = self._narrative_context(s, case)
            return audit.export_trail(s, case_id, annotate=lambda events: [
                entry.text() for entry in narrative.describe_all(events, ctx)])

    # --- the case file and the trail in words ---------------------------------------------------
    def _narrative_context(self, s, case: Case, events: list[dict] | None = None,
                           show_identities: bool = False) -> "narrative.Context":
        d = procedures.runtime(s, case.procedure_version_id).definition
        if events is None:
            events = [audit.event_dict(e) for e in audit.case_events(s, case.id)]
        actors = {e["actor"] for e in events if e["actor"]} | {case.started_by}
        return narrative.Context(definition=d, names=directory.display_names(s, actors),
                                 params=narrative.case_params(events, d), show_identities=show_identities)

    def readable_case(self, s, case_id: int, username: str | None, action: str) -> Case:
        """The case if ``username`` may read it (None: the operator at the command line); a refusal is
        recorded in the case's trail exactly as the web app records it."""
        case = s.get(Case, case_id)
        if case is None:
            raise NotFound(f"没有编号为 {case_id} 的事项 / no case {case_id}")
        if username is not None:
            actor = directory.load_actor(s, username)
            if case.org_id not in directory.visible_org_ids(s, actor):
                raise Forbidden("不在本人所属机构范围内,无权查阅本事项 / outside the user's organizations",
                                action=action)
        return case

    def dossier(self, case_id: int, username: str | None = None) -> dict:
        """The case file (卷宗): submissions as made, decisions, objections, opinions."""
        self.fire_due(case_id)
        try:
            with self.db.read() as s:
                case = self.readable_case(s, case_id, username, "dossier")
                events = [audit.event_dict(e) for e in audit.case_events(s, case_id)]
                ctx = self._narrative_context(s, case, events)
                return dossier.build(s, case_id, ctx.definition, events, names=ctx.names)
        except Forbidden as exc:
            self._record_denied(case_id, username or "", exc)
            raise

    def narrated_history(self, case_id: int) -> list[dict]:
        """Every event of the case with its description in words (for the command line)."""
        with self.db.read() as s:
            case = s.get(Case, case_id)
            if case is None:
                raise NotFound(f"没有编号为 {case_id} 的事项 / no case {case_id}")
            events = [audit.event_dict(e) for e in audit.case_events(s, case_id)]
            ctx = self._narrative_context(s, case, events)
            entries = narrative.describe_all(events, ctx)
            return [{"seq": e["seq"], "at": e["at"], "who": ctx.who(e["actor"], account=True), "role": e["role"],
                     "role_name": catalogue.role_zh(e["role"], ""), "entry": entry}
                    for e, entry in zip(events, entries)]

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

