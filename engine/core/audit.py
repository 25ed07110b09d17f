"""The audit trail: append-only events linked into a hash chain per case (and a 'system' chain).

The hashing rules live in :mod:`engine.trailcheck` (standard library only) so the offline
verifier and the database verifier cannot disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, Iterator

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from . import clock, outbox
from engine.trailcheck import FORMAT, event_hash, event_hash_text, genesis, render
from storage.batch import WriteBatch
from storage.models import AuditCheckpoint, AuditEvent, AuditHead, Case, Organization, ProcedureVersion

SYSTEM_CHAIN = "system"
_INSERT_EVENT = insert(AuditEvent)


def _plain(value: Any) -> Any:
    if isinstance(value, (Decimal, Fraction)):
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(f"cannot record {type(value).__name__} in the audit trail")


def to_json(data: Any) -> str:
    """Canonical JSON of event data (Decimals and dates as text)."""
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=_plain)


def iso(at: datetime) -> str:
    """The exact text of a timestamp in the chain (UTC, microseconds)."""
    if at.tzinfo is not None:
        at = clock.to_utc(at).replace(tzinfo=None)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def db_time(at: datetime | None = None) -> datetime:
    """A naive UTC datetime for the database, from the engine clock by default."""
    at = at or clock.now()
    return clock.to_utc(at).replace(tzinfo=None)


def case_chain(case_id: int) -> str:
    return f"case:{case_id}"


def append_case_event(session: Session, case: Case, type_: str, *, actor: str = "", role: str = "",
                      data: dict[str, Any] | None = None, at: datetime | None = None) -> dict[str, Any]:
    """Append an event to a case's chain; the caller holds the case row locked."""
    return append_case_events(session, case, [(type_, actor, role, data or {})], at=at)[0]


def append_case_events(session: Session, case: Case, events: list[tuple[str, str, str, dict[str, Any]]],
                       *, at: datetime | None = None, batch: WriteBatch | None = None) -> list[dict[str, Any]]:
    """Append several events (type, actor, role, data) to a case's chain in one statement (with
    ``batch``: sent with the change's other writes)."""
    chain = case_chain(case.id)
    rows = []
    for type_, actor, role, data in events:
        prev = case.audit_head or genesis(chain)
        event = _make_event(chain, case.audit_seq + 1, type_, actor, role, data, prev, at)
        event["case_id"] = case.id
        case.audit_seq = event["seq"]
        case.audit_head = event["hash"]
        rows.append(event)
    if rows:
        if batch is not None:
            batch.execute(_INSERT_EVENT, rows)
        else:
            session.connection().execute(_INSERT_EVENT, rows)
        outbox.enqueue(session, case.id, at=at, batch=batch)  # the background work (warning rules) learns of it
    return rows


def append_system_event(session: Session, type_: str, *, actor: str = "", role: str = "",
                        data: dict[str, Any] | None = None, at: datetime | None = None) -> dict[str, Any]:
    """Append an administrative event to the 'system' chain."""
    query = select(AuditHead).where(AuditHead.chain == SYSTEM_CHAIN)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    head = session.scalars(query).first()
    if head is None:
        head = AuditHead(chain=SYSTEM_CHAIN, seq=0, hash="")
        session.add(head)
    event = _make_event(SYSTEM_CHAIN, head.seq + 1, type_, actor, role, data or {}, head.hash or genesis(SYSTEM_CHAIN), at)
    event["case_id"] = None
    head.seq, head.hash = event["seq"], event["hash"]
    session.connection().execute(_INSERT_EVENT, [event])
    return event


def _make_event(chain: str, seq: int, type_: str, actor: str, role: str, data: dict, prev: str,
                at: datetime | None) -> dict[str, Any]:
    when = db_time(at)
    text = to_json(data)
    digest = event_hash_text(chain, seq, type_, iso(when), actor, role, text, prev)
    return {"chain": chain, "seq": seq, "type": type_, "at": when, "actor": actor, "role": role, "data": text,
            "prev_hash": prev, "hash": digest}


@dataclass
class ChainReport:
    chain: str
    events: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(events: Iterator[AuditEvent] | list[AuditEvent], chain: str, head_seq: int | None,
                 head_hash: str | None) -> ChainReport:
    """Recompute a chain; report edited, deleted, reordered or inserted events."""
    problems: list[str] = []
    prev = genesis(chain)
    count = 0
    for count, ev in enumerate(events, start=1):
        if ev.seq != count:
            problems.append(f"event seq {ev.seq} found where {count} was expected: events deleted or inserted")
        if ev.prev_hash != prev:
            problems.append(f"event seq {ev.seq} ({ev.type}) does not link to the event before it: deleted, inserted or reordered")
        try:
            data = json.loads(ev.data)
        except ValueError:
            data = ev.data
        expected = event_hash(chain, ev.seq, ev.type, iso(ev.at), ev.actor, ev.role, data, ev.prev_hash)
        if expected != ev.hash:
            problems.append(f"event seq {ev.seq} ({ev.type}) was edited: its content does not match its hash")
        prev = ev.hash
        if len(problems) > 20:
            problems.append("… more problems not listed")
            break
    if head_seq is not None and (head_seq != count or (head_hash or genesis(chain)) != (prev if count else genesis(chain))):
        problems.append(f"the chain has {count} events but its head says {head_seq}: events deleted or appended outside the engine")
    return ChainReport(chain, count, problems)


_EVENT_COLUMNS = (AuditEvent.chain, AuditEvent.seq, AuditEvent.type, AuditEvent.at, AuditEvent.actor, AuditEvent.role,
                  AuditEvent.data, AuditEvent.prev_hash, AuditEvent.hash)
_CASE_COLUMNS = (Case.id, Case.audit_seq, Case.audit_head, Case.status, Case.closed_at, Case.procedure_id,
                 Case.procedure_version_id, Case.tracking_code, Case.org_id)
VERIFY_BATCH = 200


def verify(session: Session, case_id: int | None = None, *, replay: bool = True) -> list[ChainReport]:
    """Verify one case's chain, or every chain in the database: the hashes and links of each chain,
    its head against the newest signed checkpoint that anchors it (a cut or a rehash shows), and —
    with ``replay`` — the case's stored status, open steps, work items and timers against its
    replayed events (:mod:`engine.replay`). Verifying everything also checks every checkpoint
    (signature, root, consistency of the tree) as the chain "checkpoints". Cases are read in
    batches (events, work items, timers and states of 200 cases per query)."""
    from . import checkpoints
    from . import replay as replaying
    from storage.models import CaseState, TimerDue, WorkItem

    reports = []
    heads: dict[str, tuple[int, str]] = {}
    if case_id is None:
        rows = session.execute(select(*_CASE_COLUMNS).order_by(Case.id)).all()
        head = session.get(AuditHead, SYSTEM_CHAIN)
        reports.append(_verify_stored(session, SYSTEM_CHAIN, head.seq if head else 0, head.hash if head else ""))
        heads[SYSTEM_CHAIN] = (head.seq if head else 0, head.hash if head else "")
        orphan = session.scalars(select(AuditEvent.chain).where(
            AuditEvent.case_id.is_not(None), ~AuditEvent.case_id.in_(select(Case.id))).limit(1)).first()
        if orphan:
            reports.append(ChainReport(orphan, 0, ["events belong to a case that no longer exists"]))
    else:
        rows = session.execute(select(*_CASE_COLUMNS).where(Case.id == case_id)).all()
    orgs = dict(session.execute(select(Organization.id, Organization.code)).all()) if rows else {}
    versions = dict(session.execute(select(ProcedureVersion.id, ProcedureVersion.version)).all()) if rows else {}
    for i in range(0, len(rows), VERIFY_BATCH):
        batch = rows[i:i + VERIFY_BATCH]
        ids = [r.id for r in batch]
        events: dict[str, list] = {}
        for ev in session.execute(select(*_EVENT_COLUMNS).where(AuditEvent.chain.in_([case_chain(c) for c in ids]))
                                  .order_by(AuditEvent.chain, AuditEvent.seq, AuditEvent.id)):
            events.setdefault(ev.chain, []).append(ev)
        items: dict[int, list] = {}
        timers: dict[int, list] = {}
        states: dict[int, str] = {}
        if replay:
            for cid, step, due in session.execute(select(WorkItem.case_id, WorkItem.step_id, WorkItem.due_at)
                                                  .where(WorkItem.case_id.in_(ids))):
                items.setdefault(cid, []).append((step, due))
            for cid, node, due in session.execute(select(TimerDue.case_id, TimerDue.node_id, TimerDue.due_at)
                                                  .where(TimerDue.case_id.in_(ids))):
                timers.setdefault(cid, []).append((node, due))
            states = dict(session.execute(select(CaseState.case_id, CaseState.state)
                                          .where(CaseState.case_id.in_([r.id for r in batch if r.status == "running"])))
                          .all())
        for r in batch:
            chain = case_chain(r.id)
            chain_events = events.get(chain, [])
            report = verify_chain(chain_events, chain, r.audit_seq, r.audit_head)
            if replay:
                report.problems.extend(replaying.compare_rows(
                    session, r, chain_events, items=items.get(r.id, []), timer_rows=timers.get(r.id, []),
                    state=states.get(r.id, ""), org_code=orgs.get(r.org_id),
                    version_number=versions.get(r.procedure_version_id)))
            reports.append(report)
            heads[chain] = (r.audit_seq, r.audit_head)
    by_chain = {r.chain: r for r in reports}
    for chain, found in checkpoints.anchor_problems(session, heads).items():
        if chain in by_chain:
            by_chain[chain].problems.extend(found)
    if case_id is None:
        problems = checkpoints.verify_all(session)
        count = session.scalar(select(func.count()).select_from(AuditCheckpoint)) or 0
        if problems or count:
            reports.append(ChainReport("checkpoints", count, problems))
    return reports


def verify_system(session: Session) -> ChainReport:
    """Verify the 'system' chain (administrative actions) alone."""
    head = session.get(AuditHead, SYSTEM_CHAIN)
    return _verify_stored(session, SYSTEM_CHAIN, head.seq if head else 0, head.hash if head else "")


def _verify_stored(session: Session, chain: str, head_seq: int, head_hash: str) -> ChainReport:
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq, AuditEvent.id)
        .execution_options(yield_per=2000)
    )
    return verify_chain(events, chain, head_seq, head_hash)


def case_events(session: Session, case_id: int) -> list[AuditEvent]:
    return list(session.scalars(
        select(AuditEvent).where(AuditEvent.chain == case_chain(case_id)).order_by(AuditEvent.seq)))


def event_dict(ev: AuditEvent) -> dict[str, Any]:
    return {"seq": ev.seq, "type": ev.type, "at": iso(ev.at), "actor": ev.actor, "role": ev.role,
            "data": json.loads(ev.data), "prev_hash": ev.prev_hash, "hash": ev.hash}


def export_trail(session: Session, case_id: int, events: list[dict[str, Any]] | None = None, *,
                 annotate=None) -> str:
    """A self-contained trail (canonical JSON text) that `engine.trailcheck` verifies offline.
    ``events``: the case's events as :func:`event_dict` gives them, some of them masked
    (:func:`engine.core.privacy.mask_events`); by default every stored event as it is.
    ``annotate(events)`` may give each event its description in words, ``text`` (not hashed)."""
    case = session.get(Case, case_id)
    if case is None:
        from .errors import NotFound

        raise NotFound(f"没有编号为 {case_id} 的事项 / no case {case_id}")
    version = session.get(ProcedureVersion, case.procedure_version_id)
    org = session.get(Organization, case.org_id)
    if events is None:
        events = [event_dict(e) for e in case_events(session, case_id)]
    if annotate is not None:
        events = [dict(e) for e in events]
        for event, text in zip(events, annotate(events)):
            event["text"] = text
    trail = {
        "format": FORMAT,
        "algorithm": "hash = sha256(canonical JSON of {chain, seq, type, at, actor, role, data, prev}); "
                     "canonical = sorted keys, no spaces, UTF-8; first prev = sha256('xiaowei-genesis:' + chain)",
        "chain": case_chain(case.id),
        "case": {
            "id": case.id, "tracking_code": case.tracking_code, "procedure_id": case.procedure_id,
            "procedure_version": version.version if version else None,
            "definition_hash": version.content_hash if version else None,
            "org": org.code if org else None, "status": case.status,
        },
        "events": events,
        "head": {"seq": len(events), "hash": events[-1]["hash"] if events else genesis(case_chain(case.id))},
        "exported_at": iso(db_time()),
    }
    from . import checkpoints

    anchor = checkpoints.anchor_for(session, case_chain(case.id))
    if anchor is not None:
        trail["anchor"] = anchor  # the signed checkpoint and this chain's inclusion proof (engine.trailcheck)
    return render(trail)


def count_events(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0
