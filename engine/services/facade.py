"""The application facade: one method per user action, each its own transaction.

The command line and the web app call only this. It opens the transactions, records refused
attempts in the case trail (after rolling the attempt back), fires due timers before a case is
read, and answers lists from the derived tables.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Callable, Mapping, TypeVar

from sqlalchemy import func, select

from engine.core import attachments, audit, cases, catalogue, directory, privacy, procedures
from engine.core.errors import EngineIncident, Forbidden, NotFound
from engine.render import narrative

from . import dossier
from storage import Database
from storage.models import AuditEvent, Case, Organization, Procedure, ProcedureVersion, TimerDue, WorkItem

ANALYZE_EVERY = timedelta(hours=1)
T = TypeVar("T")


class Xiaowei:
    """Xiaowei on one database."""

    def __init__(self, db: Database, *, inline_background: bool = True):
        self.db = db
        # True: a change's follow-up work (the warning rules) is done right after it commits, through the
        # worker (command line, scripts, tests); False: left in the outbox for `xiaowei worker` or the
        # background thread of `xiaowei serve` (the web app), so a request does only what is atomic.
        self.inline_background = inline_background
        self._last_analyze = None  # when tick last refreshed SQLite's planner statistics

    # --- one use case of a service module, in one transaction ----------------------------
    def write(self, use_case: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``use_case(session, *args, **kwargs)`` (a function of a service module) in one write
        transaction: how the web views change anything they have no method of this facade for."""
        with self.db.write() as s:
            return use_case(s, *args, **kwargs)

    def read(self, query: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``query(session, *args, **kwargs)`` in one read transaction."""
        with self.db.read() as s:
            return query(s, *args, **kwargs)

    def trail_head(self, case_id: int) -> dict:
        """The head of a case's chain: ``{"seq", "hash"}`` (the genesis hash before any event)."""
        from engine.trailcheck import genesis

        with self.db.read() as s:
            row = s.get(Case, case_id)
            if row is None:
                raise NotFound(f"没有编号为 {case_id} 的事项 / no case {case_id}")
            return {"seq": row.audit_seq, "hash": row.audit_head or genesis(audit.case_chain(case_id))}

    # --- set-up -------------------------------------------------------------------------
    def init(self, *, actor: str = "system") -> list[dict]:
        self.db.upgrade()
        with self.db.write() as s:
            return procedures.publish_directory(s, actor=actor)

    # --- cases --------------------------------------------------------------------------
    def start_case(self, procedure_id: str, org_code: str, username: str, data: Mapping[str, Any] | None = None) -> int:
        try:
            with self.db.write() as s:
                case = cases.start_case(s, procedure_id, org_code, username, data)
                case_id = case.id
        except EngineIncident as exc:

            with self.db.write() as s:
                _record_start_incident(s, org_code, procedure_id, exc, actor=username,
                                       submission=_submission(None, username, data))
            raise
        self._warn(case_id)
        return case_id

    def complete(self, case_id: int, step_id: str, username: str, data: Mapping[str, Any] | None = None, *,
                 on_behalf_of: str | None = None, proxy_reason: str | None = None,
                 attachments: list[dict] | None = None) -> dict:
        try:
            items: list = []
            with self.db.write() as s:
                case = cases.complete_step(s, case_id, step_id, username, data,
                                           on_behalf_of=on_behalf_of, proxy_reason=proxy_reason,
                                           attachments=attachments, open_items=items)
                status = case.status
            tasks = [_work_item_dict(r) for r in items]
        except Forbidden as exc:
            self._record_denied(case_id, username, exc)
            raise
        except EngineIncident as exc:
            self._record_incident(case_id, exc, username, _submission(step_id, username, data, on_behalf_of,
                                                                      proxy_reason, attachments))
            raise
        self._warn(case_id)
        return {"case_id": case_id, "status": status, "tasks": tasks}

    # --- incidents: a condition or timer failed at run time (engine.incidents) -----------------
    def _record_incident(self, case_id: int, exc: EngineIncident, actor: str, submission: dict | None = None) -> None:
        """After the failed change rolled back: the incident on the case's trail, the township warned."""
        from engine.core import incidents

        with self.db.write() as s:
            recorded = incidents.record(s, case_id, exc, actor=actor,
                                        submission=getattr(exc, "submission", None) or submission)
        if recorded is not None:
            self._warn(case_id)

    def retry_case(self, case_id: int, username: str, params: Mapping[str, str] | None = None) -> dict:
        """An administrator retries a case after an incident with the parameters now in force (and
        ``params`` given here); the failed submission is completed again as its author."""
        from engine.core import incidents

        try:
            with self.db.write() as s:
                result = incidents.retry(s, case_id, username, params)
                result["tasks"] = _tasks(s, case_id)
        except Forbidden as exc:
            self._record_denied(case_id, username, exc)
            raise
        except EngineIncident as exc:
            self._record_incident(case_id, exc, username)
            raise
        self._warn(case_id)
        return result

    def open_incident(self, case_id: int) -> dict | None:
        from engine.core import incidents

        with self.db.read() as s:
            return incidents.incident_dict(incidents.open_incident(s, case_id))

    # --- evidence files -----------------------------------------------------------------
    def store_files(self, files: list[tuple[str | None, bytes]], username: str) -> list[dict]:
        """Check and store evidence files (all or none); their references for :meth:`complete`. The
        bytes count against the user's daily upload quota (atomically, in the same transaction)."""
        from engine.core import limits

        with self.db.write() as s:
            stored = attachments.store_many(s, files, username)
            limits.charge_upload(s, username, sum(len(content) for _, content in files))
            return stored

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
        """A member of the public objects to what a case has on notice (only during the notice period);
        the receipt (its code, the case, the notice)."""
        from engine.core import objections

        with self.db.write() as s:
            return objections.file_objection(s, tracking_code, text, name=name, phone=phone)

    def report(self, org_code: str, text: str, *, topic: str, name: str | None = None, phone: str | None = None,
               files: list[tuple[str | None, bytes]] | None = None) -> dict:
        """码上举报: start a case of the township's complaint-handling procedure (T-SUP-01) about the
        village or community ``org_code``, as the public; its tracking code."""
        from . import public

        with self.db.write() as s:
            return public.file_report(s, org_code, text, topic=topic, name=name, phone=phone, files=files)

    # --- supervision warnings (engine.warnings) -------------------------------------------
    def _warn(self, case_id: int) -> list[dict]:
        """After a change of a case committed (with its outbox row): with ``inline_background`` its
        follow-up work now, through the worker (its own transaction; a failure is logged, never undoes
        the change, and the row stays for the worker); otherwise nothing: the worker drains the outbox."""
        if not self.inline_background:
            return []
        from . import worker

        return worker.process_case(self, case_id)

    def run_background(self, **options: Any) -> dict:
        """Work off the outbox now (:func:`engine.services.worker.drain`)."""
        from . import worker

        return worker.drain(self, **options)

    def _warn_timed(self) -> None:
        """Rules that depend on the passing of time (overdue steps, stalled cases, quarterly disclosure)."""
        from .supervision import warnings

        try:
            with self.db.write() as s:
                warnings.evaluate(s, rules=warnings.TIMED_RULES)
        except Exception:  # noqa: BLE001
            warnings.log.exception("timed warning evaluation failed")

    def scan_warnings(self, rules: list[str] | None = None) -> list[dict]:
        from .supervision import warnings

        with self.db.write() as s:
            return warnings.scan(s, rules=rules)

    def list_warnings(self, **filters: Any) -> dict:
        from .supervision import warnings

        with self.db.read() as s:
            return warnings.list_warnings(s, **filters)

    def show_warning(self, warning_id: int, username: str | None = None) -> dict:
        from .supervision import warnings

        with self.db.read() as s:
            actor = directory.load_actor(s, username) if username else None
            return warnings.get_warning(s, warning_id, actor)

    def handle_warning(self, warning_id: int, action: str, username: str, opinion: str) -> dict:
        from .supervision import warnings

        with self.db.write() as s:
            return warnings.handle(s, warning_id, action, username, opinion)

    def supervise_warning(self, warning_id: int, username: str, opinion: str) -> dict:
        from .supervision import warnings

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
            try:
                with self.db.write() as s:
                    if _stuck_on_timer(s, case_id):
                        return  # an open timer incident: only an administrator's retry fires it again
                    cases.open_for_update(s, case_id)
            except EngineIncident as exc:
                self._record_incident(case_id, exc, "system")  # the case reads as it was; nothing lost

    def tick(self, *, limit: int = 10_000) -> dict:
        """Fire every due timer; safe to run from several processes at once."""
        now = audit.db_time()
        with self.db.read() as s:
            ids = list(s.scalars(select(TimerDue.case_id).where(TimerDue.due_at <= now)
                                 .group_by(TimerDue.case_id).order_by(func.min(TimerDue.due_at)).limit(limit)))
        fired, skipped, events, stuck = 0, 0, 0, 0
        for case_id in ids:
            try:
                with self.db.write() as s:
                    if _stuck_on_timer(s, case_id):
                        stuck += 1
                        continue
                    result = cases.fire_due_timers(s, case_id)
            except EngineIncident as exc:
                self._record_incident(case_id, exc, "system")
                stuck += 1
                continue
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
                  "events": events, "incidents": stuck}
        result.update(self._housekeeping(now))
        if promoted:
            result["versions_effective"] = promoted
        result.update(self._start_of_month(now))
        from engine.core.workdays import check_calendar

        missing = check_calendar()  # logged once a day; shown on the admin pages
        if missing:
            result["calendar_warnings"] = [str(w) for w in missing]
        return result

    def _housekeeping(self, now) -> dict:
        """Hardening chores of ``tick``: summarise quiet failed sign-ins, drop old counters, stamps
        and sessions, make the periodic signed checkpoint. A failure is logged, never raised."""
        from engine.core import checkpoints, limits, outbox, sessions, throttle
        from .supervision import warnings

        done: dict = {}
        try:
            with self.db.write() as s:
                done["login_failures_recorded"] = throttle.flush(s, now)
                limits.purge(s, now)
                sessions.purge(s, now)
                outbox.purge(s)
        except Exception:  # noqa: BLE001
            warnings.log.exception("tick housekeeping failed")
        try:
            made = checkpoints.periodic(self.db, now)
            if made is not None:
                done["checkpoint"] = made["number"]
        except Exception:  # noqa: BLE001
            warnings.log.exception("checkpoint failed")
        return done

    # --- supervision (engine.supervision): scheduled cases, grades, notes ---------------------------
    def _start_of_month(self, now) -> dict:
        """On the first day of a month (China time) tick starts the month's checklists and grades the
        month before (notices for C and D); both are idempotent. A failure is logged, never raised."""
        from .supervision import analysis as supervision

        if (now + supervision.LOCAL).day != 1:
            return {}
        try:
            month = supervision.parse_month(None, now)
            started = self.supervision_monthly(month)
            notices = self.grade_villages(supervision.previous_month(month), notify=True)["notices"]
            return {"monthly_started": len(started), "grade_notices": len(notices)}
        except Exception:  # noqa: BLE001 - scheduled work must never break tick
            from .supervision import warnings

            warnings.log.exception("start-of-month supervision failed")
            return {}

    def supervision_monthly(self, month: str | None = None, org_codes: list[str] | None = None) -> list[dict]:
        """Start the monthly checklist (B-SUP-01) for every village and community without one this month."""
        from .supervision import analysis as supervision

        with self.db.write() as s:
            started = supervision.start_monthly(s, supervision.parse_month(month), org_codes)
        for item in started:
            self._warn(item["case_id"])
        return started

    def grade_villages(self, month: str | None = None, *, notify: bool = False, org_code: str | None = None) -> dict:
        """Grades of every village and community for a month; with ``notify`` a notice case for C and D."""
        from .supervision import analysis as supervision

        month = supervision.parse_month(month)
        with self.db.write() as s:
            ids = directory.descendants(s, [directory.get_org(s, org_code).id]) if org_code else None
            graded = supervision.grades(s, month, ids)
            notices = supervision.issue_notices(s, graded) if notify else []
        for item in notices:
            self._warn(item["case_id"])
        return {"month": month, "grades": graded, "notices": notices}

    def record_note(self, username: str, subject: str, kind: str, text: str = "", **lists: str) -> dict:
        from .supervision import analysis as supervision

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
            # Names and phones that legacy events hold are masked for every reader here; those who
            # may know a filer read it apart (engine.privacy.case_identities).
            history = privacy.mask_events([audit.event_dict(e) for e in audit.case_events(s, case_id)])
            return {
                "id": case.id, "title": case.title, "procedure_id": case.procedure_id,
                "procedure_name": proc.name if proc else "", "procedure_version": version.version if version else None,
                "variant": bool(version and "@" in version.procedure_id),  # a township's variant (numbered on its own)
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
        """Every case (the operator's view, ``xiaowei case list``), newest first, through the case
        search the pages and the API use (:func:`engine.services.reads.search_cases`)."""
        from . import reads

        with self.db.read() as s:
            if org_code:
                directory.get_org(s, org_code)  # an unknown code is an error here, not an empty list
            rows, _ = reads.search_cases(s, None, reads.CaseQuery(mine=False, org_code=org_code, status=status,
                                                                  per_page=limit, by_id=True))
        return [{"id": r["id"], "title": r["title"], "procedure_id": r["procedure_id"],
                 "procedure_name": r["procedure_name"], "org": r["org"], "status": r["status"],
                 "status_zh": cases.STATUS_ZH.get(r["status"], r["status"]), "tracking_code": r["tracking_code"],
                 "created_at": audit.iso(r["created_at"]), "updated_at": audit.iso(r["updated_at"])} for r in rows]

    def verify(self, case_id: int | None = None) -> list[audit.ChainReport]:
        with self.db.read() as s:
            if case_id is not None and s.get(Case, case_id) is None:
                raise NotFound(f"没有编号为 {case_id} 的事项 / no case {case_id}")
            return audit.verify(s, case_id)

    def export_trail(self, case_id: int, username: str | None = None) -> str:
        """The case's trail for offline verification; its chain's head is anchored in a signed
        checkpoint first when a signing key is available here (engine.core.checkpoints). Identities
        that legacy events hold are masked (and the events marked) unless ``username`` may know them
        (engine.core.privacy). Each event also carries its description in words, ``text`` (outside
        the hashed content: it explains, the data is the record)."""
        from engine.core import checkpoints

        with self.db.read() as s:
            if s.get(Case, case_id) is None:
                raise NotFound(f"没有编号为 {case_id} 的事项 / no case {case_id}")
        checkpoints.ensure_anchored(self.db, audit.case_chain(case_id))
        with self.db.read() as s:
            case = s.get(Case, case_id)
            events = [audit.event_dict(e) for e in audit.case_events(s, case_id)]
            keep: set[int] = set()
            if username:
                d = procedures.runtime(s, case.procedure_version_id).definition
                keep = privacy.visible_seqs(s, directory.load_actor(s, username), case, d, events)
            shown = privacy.mask_events(events, keep)
            ctx = self._narrative_context(s, case, shown)
            return audit.export_trail(s, case_id, shown, annotate=lambda evs: [
                entry.text() for entry in narrative.describe_all(evs, ctx)])

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
        """The case file (卷宗): submissions as made, decisions, objections, opinions. Objectors are
        named only to ``username`` when they may know them (engine.core.privacy)."""
        self.fire_due(case_id)
        try:
            with self.db.read() as s:
                case = self.readable_case(s, case_id, username, "dossier")
                events = [audit.event_dict(e) for e in audit.case_events(s, case_id)]
                keep: set[int] = set()
                if username:
                    d = procedures.runtime(s, case.procedure_version_id).definition
                    keep = privacy.visible_seqs(s, directory.load_actor(s, username), case, d, events)
                shown = privacy.mask_events(events, keep)
                ctx = self._narrative_context(s, case, shown)
                return dossier.build(s, case_id, ctx.definition, shown, names=ctx.names)
        except Forbidden as exc:
            self._record_denied(case_id, username or "", exc)
            raise

    def narrated_history(self, case_id: int) -> list[dict]:
        """Every event of the case with its description in words (for the command line; identities
        of the public from before they were sealed are masked)."""
        with self.db.read() as s:
            case = s.get(Case, case_id)
            if case is None:
                raise NotFound(f"没有编号为 {case_id} 的事项 / no case {case_id}")
            events = privacy.mask_events([audit.event_dict(e) for e in audit.case_events(s, case_id)], set())
            ctx = self._narrative_context(s, case, events)
            entries = narrative.describe_all(events, ctx)
            return [{"seq": e["seq"], "at": e["at"], "who": ctx.who(e["actor"], account=True), "role": e["role"],
                     "role_name": catalogue.role_zh(e["role"], ""), "entry": entry}
                    for e, entry in zip(events, entries)]

    def audit_event_count(self) -> int:
        with self.db.read() as s:
            return s.scalar(select(func.count()).select_from(AuditEvent)) or 0




def _tasks(session, case_id: int) -> list[dict]:
    """Open steps of a case from the derived table (plain rows, no ORM objects)."""
    rows = session.connection().execute(cases.OPEN_ITEMS, {"case_id": case_id}).all()
    return [_work_item_dict(r) for r in rows]


def _work_item_dict(w) -> dict:
    now = audit.db_time()
    return {"case_id": w.case_id, "step_id": w.step_id, "name": w.step_name, "role": w.role_key,
            "task_id": w.task_id, "ready_at": audit.iso(w.ready_at),
            "due_at": audit.iso(w.due_at) if w.due_at else None,
            "overdue": bool(w.due_at and w.due_at < now)}


def _stuck_on_timer(session, case_id: int) -> bool:
    """Whether the case's open incident came from firing its timers (retrying it on every read or
    tick would only fail again: the case's parameters are frozen until an administrator retries)."""
    from engine.core import incidents

    found = incidents.open_incident(session, case_id)
    return found is not None and found["data"].get("action") in ("timer", "retry") \
        and not found["data"].get("submission")


SUBMISSION_MAX = 64 * 1024


def _submission(step_id: str | None, username: str, data: Mapping[str, Any] | None, on_behalf_of: str | None = None,
                proxy_reason: str | None = None, attachments: list[dict] | None = None) -> dict:
    """What the user sent with a change that hit an incident: kept on the incident so nothing is lost
    (and a retry can complete it as its author)."""
    submission: dict[str, Any] = {"actor": username, "data": dict(data or {})}
    if step_id:
        submission["step"] = step_id
    if on_behalf_of:
        submission["on_behalf_of"] = on_behalf_of
    if proxy_reason:
        submission["proxy_reason"] = proxy_reason
    if attachments:
        submission["attachments"] = list(attachments)
    try:
        size = len(audit.to_json(submission))
    except TypeError:
        size = SUBMISSION_MAX + 1
    if size > SUBMISSION_MAX:
        submission["data"] = {}
        submission["truncated"] = True
    return submission


def dumps(data: Any) -> str:
    """JSON for the command line (Chinese kept readable)."""
    return json.dumps(data, ensure_ascii=False, indent=2, default=str)


def _record_start_incident(session, org_code: str, procedure_id: str, exc, *, actor: str, submission=None) -> None:
    """A case that could not even start: the incident in the system chain and the warning (XW-07)
    straight to the township (there is no case to carry them)."""
    from engine.core import incidents
    from engine.core.directory import get_org
    from .supervision import warnings

    event, data = incidents.start_incident_event(session, org_code, procedure_id, exc, actor=actor,
                                                 submission=submission)
    try:
        org = get_org(session, org_code)
    except NotFound:
        return
    warnings.store(session, [warnings.Finding(
        "XW-07", org.id, f"start|{procedure_id}|{data['fingerprint']}",
        f"发起“{procedure_id}”时{exc.details.get('what', '流程')}无法计算:{exc.details.get('reason', '')}",
        {"procedure_id": procedure_id, "system_seq": event["seq"], **{k: data.get(k) for k in (
            "node", "node_name", "kind", "reason", "expression", "action")}})])
