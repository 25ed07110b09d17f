"""Who filed something from the public, and who may know it.

An objector's (异议人) and a reporter's (举报人) name and phone are kept **out of the hashed audit
trail**: they go to the ``sealed_identity`` table with a random salt, and the event that records
the filing holds only a salted commitment (``identity``: sha256 of the salt and the identity, see
:func:`commitment`). The chain still proves what was filed — the row can be checked against the
commitment — without revealing it to anyone who reads the trail; the salt keeps a phone number from
being found by trying them all.

Who may know the identity:

* an **objection**: the body that must verify it — holders of the role of the procedure's
  ``<disclosure step>_objections`` task (村监会, or the township office the procedure names) — and
  the township discipline office (镇纪委), who handle complaints about cadres and about how an
  objection was handled. Never a cadre whose work is objected to: whoever completed the disclosure
  step on notice does not see it even when holding the verifying role.
* a **report** (码上举报): the discipline staff who handle it — holders of the role of the steps that
  carry the reporter's fields (T-SUP-01: 镇纪委) — not every township role.

Events written before this rule hold the name and phone in their hashed data. Everywhere they are
shown, they are masked (:func:`mask_events`) for everyone but those above; an exported trail marks
such an event in its non-hashed ``masked`` key, and ``python -m engine.trailcheck`` reports it as
masked (hash not recomputed, links to its neighbours checked) instead of failing.
"""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .definitions import ProcedureDefinition
from .directory import Actor, chain_ids
from storage.models import AuditEvent, Case, SealedIdentity

# Step fields that hold a reporter's identity: sealed whenever a step carries them.
IDENTITY_FIELDS = {"reporter_name": "name", "reporter_phone": "phone"}
# Besides the verifying body, who may know an objector (see the module's text).
OBJECTION_DISCIPLINE_ROLES = frozenset({"township_discipline"})
OBJECTIONS_SUFFIX = "_objections"
MASK = "***"
COMMITMENT_SCHEME = "sha256(xiaowei-identity:salt:canonical JSON of {name, phone})"


# --- sealing ----------------------------------------------------------------------------------

def commitment(salt: str, name: str, phone: str) -> str:
    """The salted commitment to an identity that the hashed event holds."""
    body = json.dumps({"name": name or "", "phone": phone or ""}, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(f"xiaowei-identity:{salt}:{body}".encode("utf-8")).hexdigest()


def seal(name: str | None, phone: str | None) -> dict[str, str]:
    """A new sealed identity: name, phone, a random salt and the commitment. Anonymous filings are
    sealed too (an empty identity under its own salt), so the trail does not tell who left a name."""
    salt = secrets.token_hex(16)
    name, phone = (name or "").strip()[:50], (phone or "").strip()[:20]
    return {"name": name, "phone": phone, "salt": salt, "commitment": commitment(salt, name, phone)}


def event_marker(sealed: dict[str, str]) -> dict[str, str]:
    """What the hashed event keeps of a sealed identity."""
    return {"commitment": sealed["commitment"]}


def store(session: Session, case_id: int, seq: int, kind: str, sealed: dict[str, str]) -> None:
    """Keep a sealed identity for the event ``seq`` of the case's chain (same transaction)."""
    session.add(SealedIdentity(case_id=case_id, seq=seq, kind=kind, name=sealed["name"], phone=sealed["phone"],
                               salt=sealed["salt"], commitment=sealed["commitment"], created_at=audit.db_time()))


def split_identity_fields(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str] | None]:
    """(the values without the reporter's identity fields, the sealed identity or None when the
    form gave none of them)."""
    given = {k: v for k, v in values.items() if k in IDENTITY_FIELDS}
    if not any(v not in (None, "") for v in given.values()):
        return {k: v for k, v in values.items() if k not in IDENTITY_FIELDS}, None
    rest = {k: v for k, v in values.items() if k not in IDENTITY_FIELDS}
    person = {IDENTITY_FIELDS[k]: str(v or "") for k, v in given.items()}
    return rest, seal(person.get("name"), person.get("phone"))


# --- who may know ------------------------------------------------------------------------------

def objection_viewer(session: Session, actor: Actor | None, case: Case, d: ProcedureDefinition,
                     disclosure_step: str, history: Iterable[dict] = ()) -> bool:
    """Whether ``actor`` may know who objected to ``disclosure_step`` of the case."""
    if actor is None:
        return False
    held = actor.roles_at(chain_ids(session, case.org_id))
    verifier = d.steps.get(disclosure_step + OBJECTIONS_SUFFIX)
    allowed = set(OBJECTION_DISCIPLINE_ROLES) | ({verifier.role} if verifier is not None and verifier.role else set())
    if not held & allowed:
        return False
    # Never the cadre whose work is objected to.
    return actor.username not in disclosure_actors(history, disclosure_step)


def disclosure_actors(history: Iterable[dict], disclosure_step: str) -> set[str]:
    return {e["actor"] for e in history if e["type"] == "step_completed"
            and (e.get("data") or {}).get("step") == disclosure_step}


def reporter_roles(d: ProcedureDefinition) -> set[str]:
    """The roles of the steps that carry a reporter's identity fields (T-SUP-01: 镇纪委)."""
    return {s.role for s in d.steps.values() if s.role and any(f.name in IDENTITY_FIELDS for f in s.fields)}


def reporter_viewer(session: Session, actor: Actor | None, case: Case, d: ProcedureDefinition) -> bool:
    if actor is None:
        return False
    roles = reporter_roles(d)
    return bool(roles and actor.roles_at(chain_ids(session, case.org_id)) & roles)


def carries_identity(ev: dict) -> str | None:
    """'objection' or 'report' when the event records (or, legacy, holds) a public filer's identity."""
    data = ev.get("data") or {}
    if ev["type"] == "objection_filed":
        return "objection"
    if ev["type"] == "case_started" and data.get("public"):
        return "report"
    if ev["type"] == "step_completed" and (data.get("identity") or
                                            any(k in IDENTITY_FIELDS for k in (data.get("data") or {}))):
        return "report"
    return None


def visible_seqs(session: Session, actor: Actor | None, case: Case, d: ProcedureDefinition,
                 history: list[dict]) -> set[int]:
    """The events of the case whose filer's identity ``actor`` may know."""
    if actor is None:
        return set()
    seen: set[int] = set()
    report_ok: bool | None = None
    objection_ok: dict[str, bool] = {}
    for ev in history:
        kind = carries_identity(ev)
        if kind == "objection":
            step = (ev.get("data") or {}).get("step") or ""
            if step not in objection_ok:
                objection_ok[step] = objection_viewer(session, actor, case, d, step, history)
            if objection_ok[step]:
                seen.add(ev["seq"])
        elif kind == "report":
            if report_ok is None:
                report_ok = reporter_viewer(session, actor, case, d)
            if report_ok:
                seen.add(ev["seq"])
    return seen


# --- reading identities and masking events -----------------------------------------------------

def identities(session: Session, case_id: int, history: list[dict], seqs: set[int]) -> dict[int, dict]:
    """seq → {name, phone, kind, sealed} for the events ``seqs`` (to be shown to someone who may know
    them): from ``sealed_identity``, or from the event's own data for legacy events. ``history`` must
    be unmasked for legacy identities to be found (the stored events, not :func:`mask_events`' output)."""
    if not seqs:
        return {}
    found: dict[int, dict] = {}
    committed = {ev["seq"]: _commitment_of(ev) for ev in history}
    for row in session.scalars(select(SealedIdentity).where(SealedIdentity.case_id == case_id,
                                                            SealedIdentity.seq.in_(sorted(seqs)))):
        # The row agrees with the commitment the hashed event holds: the identity is as filed.
        intact = commitment(row.salt, row.name, row.phone) == row.commitment == committed.get(row.seq)
        found[row.seq] = {"name": row.name, "phone": row.phone, "kind": row.kind, "sealed": True, "intact": intact}
    for ev in history:
        if ev["seq"] in seqs and ev["seq"] not in found:
            legacy = _legacy_identity(ev)
            if legacy is not None and (legacy["name"] or legacy["phone"]):
                found[ev["seq"]] = {**legacy, "kind": carries_identity(ev), "sealed": False, "intact": True}
    return found


def _commitment_of(ev: dict) -> str | None:
    data = ev.get("data") or {}
    marker = data.get("identity") or (data.get("public") or {}).get("identity") or {}
    return marker.get("commitment") if isinstance(marker, dict) else None


def case_identities(session: Session, actor: Actor | None, case_id: int) -> dict[int, dict]:
    """seq → identity of every filer of the case that ``actor`` may know (reads the stored events)."""
    from .procedures import runtime

    case = session.get(Case, case_id)
    if case is None or actor is None:
        return {}
    history = stored_history(session, case_id)
    d = runtime(session, case.procedure_version_id).definition
    return identities(session, case_id, history, visible_seqs(session, actor, case, d, history))


def stored_history(session: Session, case_id: int) -> list[dict]:
    return [audit.event_dict(e) for e in session.scalars(
        select(AuditEvent).where(AuditEvent.chain == audit.case_chain(case_id)).order_by(AuditEvent.seq))]


def _legacy_identity(ev: dict) -> dict | None:
    data = ev.get("data") or {}
    if ev["type"] == "objection_filed":
        return {"name": str(data.get("name") or ""), "phone": str(data.get("phone") or "")}
    values: dict = {}
    if ev["type"] == "case_started":
        values = data.get("initial") or {}
        reporter = (data.get("public") or {}).get("reporter")
        if reporter and reporter != "匿名" and not values.get("reporter_name"):
            values = {**values, "reporter_name": reporter}
    elif ev["type"] == "step_completed":
        values = data.get("data") or {}
    if not any(k in values for k in IDENTITY_FIELDS):
        return None
    return {"name": str(values.get("reporter_name") or ""), "phone": str(values.get("reporter_phone") or "")}


def mask_events(events: list[dict], keep: set[int] = frozenset()) -> list[dict]:  # type: ignore[assignment]
    """The events with the identities that legacy events hold in their hashed data replaced by
    :data:`MASK` (except the events ``keep``), each masked event marked with ``masked``: the paths
    of what was masked. Events that hold no identity are returned as they are (not copied)."""
    out = []
    for ev in events:
        if ev["seq"] in keep or carries_identity(ev) is None:
            out.append(ev)
            continue
        masked_ev, paths = _mask_one(ev)
        if paths:
            masked_ev["masked"] = paths
            out.append(masked_ev)
        else:
            out.append(ev)
    return out


def _mask_one(ev: dict) -> tuple[dict, list[str]]:
    ev = copy.deepcopy(ev)
    data = ev.get("data") or {}
    paths: list[str] = []

    def hide(holder: dict, key: str, path: str) -> None:
        if holder.get(key) not in (None, "", MASK):
            holder[key] = MASK
            paths.append(path)

    if ev["type"] == "objection_filed":
        hide(data, "name", "data.name")
        hide(data, "phone", "data.phone")
    elif ev["type"] == "case_started":
        initial = data.get("initial") or {}
        for key in IDENTITY_FIELDS:
            hide(initial, key, f"data.initial.{key}")
        public = data.get("public") or {}
        if public.get("reporter") not in (None, "", "匿名", MASK):
            public["reporter"] = MASK
            paths.append("data.public.reporter")
    elif ev["type"] == "step_completed":
        values = data.get("data") or {}
        for key in IDENTITY_FIELDS:
            hide(values, key, f"data.data.{key}")
        for i, change in enumerate(data.get("changes") or []):
            if change.get("field") in IDENTITY_FIELDS:
                hide(change, "before", f"data.changes.{i}.before")
                hide(change, "after", f"data.changes.{i}.after")
    return ev, paths
