"""Objections on the staff side: the panel of a case page, the inboxes, the trail's identities.

Reads only (the views run them with ``xw().read``); every rule of who may know an objector or a
reporter is :mod:`engine.core.privacy`'s.
What a viewer gets:

* everyone who may see the case: the count on each running notice ("已收到异议 N 件");
* the verifying body, supervisors and township or district staff: every objection of the case with
  its text and where it stands;
* those who may know the objector (:func:`engine.privacy.objection_viewer`): also name and phone.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core import audit, catalogue, objections, privacy
from engine.core.directory import Actor, chain_ids
from storage.models import Case, Objection, TimerDue

from . import reads


def panel(s: Session, actor: Actor | None, case_id: int) -> dict:
    """What the case page's objection section shows the user (``cases/_objections.html``)."""
    case = s.get(Case, case_id)
    d = reads.definition(s, case.procedure_version_id)
    counts = objections.notice_counts(s, [case_id])
    notices = []
    if case.status == "running":
        for t in s.query(TimerDue).filter(TimerDue.case_id == case_id).order_by(TimerDue.due_at):
            node = d.nodes.get(t.node_id)
            if node is None or not node.notice_for:
                continue
            step = d.steps.get(node.notice_for)
            verifier = d.steps.get(node.notice_for + privacy.OBJECTIONS_SUFFIX)
            notices.append({"step": step.name if step else node.name, "due_at": audit.iso(t.due_at),
                            "count": counts.get((case_id, t.task_id), 0),
                            "verifier": verifier.role if verifier is not None else ""})
    has_any = s.scalar(select(Objection.id).where(Objection.case_id == case_id).limit(1)) is not None
    history = privacy.stored_history(s, case_id) if has_any else []  # only a case with objections
    listed = objections.case_objections(s, case, history) if has_any else []
    held = actor.roles_at(chain_ids(s, case.org_id)) if actor is not None else set()
    verifying = {v.role for sid, v in d.steps.items() if sid.endswith(privacy.OBJECTIONS_SUFFIX) and v.role}
    may_list = bool(held & (verifying | objections.INBOX_ROLES | privacy.OBJECTION_DISCIPLINE_ROLES))
    seen = privacy.visible_seqs(s, actor, case, d, history) if may_list and listed else set()
    who = privacy.identities(s, case_id, history, seen)
    blank = {"name": "", "phone": ""}
    items = [{**o, "identity": who.get(o["seq"], blank) if o["seq"] in seen else None} for o in listed] \
        if may_list else None
    roles = sorted({o["verifier_role"] for o in listed if o["verifier_role"]} |
                   {n["verifier"] for n in notices if n["verifier"]})
    return {"notices": notices, "listed": items, "total": len(listed), "may_identity": bool(seen),
            "verifiers": roles}


def for_api(s: Session, actor: Actor | None, case_id: int) -> list[dict]:
    """The case's objections as the API gives them: what the case page lists to the user (nothing
    for those who see only the counts), name and phone only for those who may know them."""
    items = panel(s, actor, case_id)["listed"] or []
    keys = ("seq", "step", "step_name", "text", "at", "notice_due", "current", "status", "verified_at", "upheld",
            "reply", "redo", "verify_due", "verifier_role")
    return [{**{k: o.get(k) for k in keys}, "status_zh": objections.STATUS_ZH.get(o["status"], o["status"]),
             "objector": ({"name": o["identity"]["name"], "phone": o["identity"]["phone"]}
                          if o["identity"] is not None else None)} for o in items]


def identities(s: Session, actor: Actor | None, case_id: int) -> dict[int, dict]:
    """seq → the filer's identity of the case's events the user may know (trail pages)."""
    return privacy.case_identities(s, actor, case_id)


def inbox(s: Session, actor: Actor | None, *, verifier_only: bool = False) -> list[dict]:
    """The user's objections (see :func:`engine.core.objections.inbox`)."""
    if actor is None:
        return []
    return objections.inbox(s, actor, verifier_only=verifier_only)


def may_supervise(actor) -> bool:
    return actor is not None and any(role in objections.INBOX_ROLES for role, _ in actor.assignments)


def step_objections(session: Session, actor: Actor | None, case: Case, d, step) -> list[dict]:
    """The objections an ``<step>_objections`` task must answer (its round), with the objector's
    name and phone only when the user may know them."""
    disclosure = step.id[:-len(privacy.OBJECTIONS_SUFFIX)]
    from engine.core import cases as engine_cases

    filed = engine_cases.filed_objections(session, case.id, disclosure)
    stored = privacy.stored_history(session, case.id)
    seen = privacy.visible_seqs(session, actor, case, d, stored)
    who = privacy.identities(session, case.id, stored, seen)
    out = []
    for o in filed:
        ident = who.get(o["seq"])
        out.append({"seq": o["seq"], "at": o["at"], "text": o.get("text") or "",
                    "name": ident["name"] if ident else "", "phone": ident["phone"] if ident else "",
                    "hidden": o["seq"] not in seen})
    return out


def role_names(keys) -> str:
    return "、".join(catalogue.role_zh(k) for k in keys)
