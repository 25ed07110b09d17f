"""Objections (异议) to what a case has on notice: filing, receipts, and where they are answered.

A member of the public objects during a notice period (公示期). The objection is recorded at once
as an ``objection_filed`` event in the case's chain — the text, the disclosure step and the notice,
and a salted commitment to the objector's name and phone, which themselves go to
``sealed_identity`` (:mod:`engine.privacy`) — and an ``objection`` row gives it a receipt code (回执码)
and ties it to the notice timer it was filed under. From that moment

* the verifying body (the role of the ``<step>_objections`` task) sees it on the case page and in
  its inbox, with the objector's name and phone; supervisors see it in theirs; everyone sees it
  counted on the notice ("已收到异议 N 件");
* the objector follows it by the receipt code: received → verified → how it ended, all read from the
  case's chain (the ``<step>_objections`` completion: upheld, and which step is done again, or the
  verifier's reply).

Nothing here changes a case except :func:`file_objection`, inside the case's write transaction.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import audit, catalogue, forms, privacy, spiff
from .cases import (PUBLIC_ACTOR, RUNNING, format_tracking_code, new_tracking_code, normalize_tracking_code,
                    open_for_update)
from .definitions import ProcedureDefinition
from .directory import Actor, chain_ids, visible_org_ids
from .errors import Conflict, InvalidData, NotFound
from .procedures import runtime
from storage.models import Case, Objection, Organization, TimerDue, WorkItem

TEXT_MAX = 1000
SUFFIX = privacy.OBJECTIONS_SUFFIX
# Who sees the objections of their area in the inbox besides the verifying role's holders.
INBOX_ROLES = catalogue.SUPERVISOR_ROLES | catalogue.ADMIN_ROLES
STATUS_ZH = {"on_notice": "公示期内,期满后核实", "verifying": "正在核实", "upheld": "异议成立",
             "not_upheld": "异议不成立", "closed": "事项已结束,未经核实"}


# --- filing -------------------------------------------------------------------------------------

def file_objection(session: Session, tracking_code: str, text: str, *, name: str | None = None,
                   phone: str | None = None) -> dict:
    """Object to what the case of ``tracking_code`` has on notice. Accepted only while a notice-period
    timer of the case waits. Returns the receipt: {receipt_code, case_id, seq, step, step_name,
    notice_due, filed_at}."""
    code = normalize_tracking_code(tracking_code)
    case_id = session.scalar(select(Case.id).where(Case.tracking_code == code)) if code else None
    if case_id is None:
        raise NotFound("没有这个查询码的事项 / no case with this tracking code")
    clean_text, clean_name, clean_phone = _checked(text, name, phone)
    ctx = open_for_update(session, case_id)
    assert ctx is not None
    case = ctx.case
    notice = _running_notice(ctx) if case.status == RUNNING else None
    if notice is None:
        raise Conflict("本事项当前不在公示期内,不能提出异议 / the case has nothing on notice now")
    task, node, deadline = notice
    step = ctx.definition.steps.get(node.notice_for or "")
    sealed = privacy.seal(clean_name, clean_phone)
    due = audit.db_time(deadline) if deadline else None
    data = {"step": node.notice_for, "step_name": step.name if step else "", "node": node.id,
            "notice_due": audit.iso(due) if due else None, "text": clean_text,
            "identity": privacy.event_marker(sealed)}
    event = audit.append_case_event(session, case, "objection_filed", actor=PUBLIC_ACTOR, role="", data=data)
    privacy.store(session, case.id, event["seq"], "objection", sealed)
    receipt = _unique_receipt(session)
    session.add(Objection(case_id=case.id, seq=event["seq"], receipt_code=receipt, step_id=node.notice_for or "",
                          node_id=node.id, timer_task_id=str(task.id), filed_at=event["at"]))
    case.updated_at = audit.db_time()
    session.flush()
    return {"receipt_code": format_tracking_code(receipt), "case_id": case.id, "seq": event["seq"],
            "step": node.notice_for, "step_name": data["step_name"], "notice_due": data["notice_due"],
            "filed_at": audit.iso(event["at"])}


def _checked(text: str | None, name: str | None, phone: str | None) -> tuple[str, str, str]:
    errors: dict[str, str] = {}
    clean_text = str(text or "").strip()
    if _has_control(text):
        errors["text"] = "异议内容含有控制字符 / the text contains control characters"
    elif len(clean_text) < 5:
        errors["text"] = "请写明异议内容(至少5个字) / write at least 5 characters"
    elif len(clean_text) > TEXT_MAX:
        errors["text"] = f"异议内容不能超过{TEXT_MAX}字 / at most {TEXT_MAX} characters"
    clean_name = (name or "").strip()
    if _has_control(clean_name) or len(clean_name) > 50:
        errors["name"] = "姓名不能超过50字 / at most 50 characters"
    clean_phone = (phone or "").strip().replace(" ", "")
    if clean_phone:
        try:
            clean_phone = forms.coerce(forms.Field("phone", "联系电话", "phone"), clean_phone)
        except ValueError as exc:
            errors["phone"] = str(exc)
    if errors:
        raise InvalidData("异议有误 / the objection has errors", errors)
    return clean_text, clean_name, clean_phone


def _has_control(text: str | None) -> bool:
    return any(ord(ch) < 32 and ch not in "\n\r\t" for ch in (text or ""))


def _running_notice(ctx) -> tuple[Any, Any, datetime | None] | None:
    """(timer task, node, deadline) of the case's notice period that runs now, if any."""
    _, waiting = spiff.open_tasks(ctx.workflow)
    for task, deadline in waiting:
        node = ctx.definition.nodes.get(task.task_spec.bpmn_id)
        # A notice period that has run out is over even before `tick` fires its timer.
        if node is not None and node.notice_for and (deadline is None or audit.db_time(deadline) > audit.db_time()):
            return task, node, deadline
    return None


def _unique_receipt(session: Session) -> str:
    """A receipt code unlike every receipt and every case tracking code (one lookup box finds both)."""
    while True:
        code = new_tracking_code()
        taken = session.scalar(select(Objection.id).where(Objection.receipt_code == code)) or \
            session.scalar(select(Case.id).where(Case.tracking_code == code))
        if taken is None:
            return code


# --- where each objection stands ---------------------------------------------------------------------

def outcome(d: ProcedureDefinition, row: Objection, history: list[dict], case_status: str,
            open_steps: dict[str, datetime | None]) -> dict:
    """Where an objection stands, from the case's chain: status (see :data:`STATUS_ZH`), when and by
    which role it was verified, upheld or not, the verifier's reply, the step done again.
    ``open_steps``: the case's open steps (step id → due time)."""
    task_id = row.step_id + SUFFIX
    verifier = d.steps.get(task_id)
    result: dict[str, Any] = {"status": "on_notice", "verified_at": None, "upheld": None, "reply": "",
                              "redo": "", "verify_due": None,
                              "verifier_role": verifier.role if verifier is not None else ""}
    after = [e for e in history if e["seq"] > row.seq]
    done = next((e for e in after if e["type"] == "step_completed" and e["data"].get("step") == task_id), None)
    if done is not None:
        values = done["data"].get("data") or {}
        upheld = bool(values.get("objection_upheld"))
        result.update(status="upheld" if upheld else "not_upheld", verified_at=done["at"], upheld=upheld,
                      reply=str(values.get("objection_reply") or ""), verifier_role=done.get("role") or
                      result["verifier_role"])
        if upheld:
            decided = next((e for e in after if e["seq"] > done["seq"] and e["type"] == "gateway_decided"), None)
            if decided is not None:
                result["redo"] = decided["data"].get("target_name") or ""
        return result
    if task_id in open_steps:
        due = open_steps[task_id]
        result.update(status="verifying", verify_due=audit.iso(due) if due else None)
    elif case_status != RUNNING or any(e["type"] in ("case_closed", "case_cancelled") for e in after):
        result["status"] = "closed"
    return result


def case_objections(session: Session, case: Case, history: list[dict] | None = None) -> list[dict]:
    """Every objection of the case, oldest first, with where it stands and whether its notice runs now
    (``current``). No identity: see :func:`engine.privacy.identities`."""
    rows = session.scalars(select(Objection).where(Objection.case_id == case.id).order_by(Objection.seq)).all()
    if not rows:
        return []
    if history is None:
        history = privacy.stored_history(session, case.id)
    d = runtime(session, case.procedure_version_id).definition
    waiting = set(session.scalars(select(TimerDue.task_id).where(TimerDue.case_id == case.id)))
    open_steps = dict(session.execute(select(WorkItem.step_id, WorkItem.due_at)
                                      .where(WorkItem.case_id == case.id)).all())
    events = {e["seq"]: e for e in history}
    found = []
    for row in rows:
        ev = events.get(row.seq) or {"data": {}, "at": audit.iso(row.filed_at)}
        data = ev["data"]
        step = d.steps.get(row.step_id)
        found.append({"seq": row.seq, "step": row.step_id, "step_name": data.get("step_name") or
                      (step.name if step else ""), "text": data.get("text") or "", "at": ev["at"],
                      "notice_due": data.get("notice_due"), "receipt": bool(row.receipt_code),
                      "current": case.status == RUNNING and row.timer_task_id in waiting,
                      **outcome(d, row, history, case.status, open_steps)})
    return found


def notice_counts(session: Session, case_ids: Iterable[int]) -> dict[tuple[int, str], int]:
    """(case id, notice timer task id) → objections filed under that notice, for waiting notices."""
    ids = sorted(set(case_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(Objection.case_id, Objection.timer_task_id, func.count())
        .join(TimerDue, (TimerDue.case_id == Objection.case_id) & (TimerDue.task_id == Objection.timer_task_id))
        .where(Objection.case_id.in_(ids))
        .group_by(Objection.case_id, Objection.timer_task_id)).all()
    return {(case_id, task_id): n for case_id, task_id, n in rows}


# --- the objector's receipt ------------------------------------------------------------------------

def by_receipt(session: Session, receipt_code: str) -> Objection | None:
    code = normalize_tracking_code(receipt_code)
    if len(code) != 12:
        return None
    return session.scalar(select(Objection).where(Objection.receipt_code == code))


def track(session: Session, receipt_code: str) -> dict | None:
    """What the objector's tracking page shows (no identity), or None for an unknown code."""
    row = by_receipt(session, receipt_code)
    if row is None:
        return None
    case = session.get(Case, row.case_id)
    history = privacy.stored_history(session, case.id)
    listed = next(o for o in case_objections(session, case, history) if o["seq"] == row.seq)
    org = session.get(Organization, case.org_id)
    d = runtime(session, case.procedure_version_id).definition
    return {**listed, "receipt_code": format_tracking_code(row.receipt_code or ""), "case_id": case.id,
            "case_code": format_tracking_code(case.tracking_code), "case_title": case.title,
            "procedure": d.name, "definition": d, "org": org.name if org else "",
            "org_code": org.code if org else "", "case_status": case.status, "history": history}


# --- inboxes -------------------------------------------------------------------------------------

def inbox(session: Session, actor: Actor, *, verifier_only: bool = False, recent: int = 20) -> list[dict]:
    """Objections the actor should know of, open ones first (oldest first), then the ``recent`` latest
    answered: in the organizations they supervise or administer (supervisors, township and district
    staff), and those they must verify (holders of the verifying role; ``verifier_only``: only these)."""
    visible = visible_org_ids(session, actor)
    if not visible:
        return []
    supervised = set() if verifier_only else _descendants_of_roles(session, actor, INBOX_ROLES)
    rows = session.execute(
        select(Objection, Case).join(Case, Case.id == Objection.case_id)
        .where(Case.org_id.in_(visible)).order_by(Objection.filed_at.desc()).limit(500)).all()
    by_case: dict[int, list[Objection]] = defaultdict(list)
    cases: dict[int, Case] = {}
    for row, case in rows:
        by_case[case.id].append(row)
        cases[case.id] = case
    orgs = {o.id: o for o in session.scalars(select(Organization).where(
        Organization.id.in_({c.org_id for c in cases.values()} or {-1})))}
    open_items, answered = [], []
    for case_id, case in cases.items():
        d = runtime(session, case.procedure_version_id).definition
        held = actor.roles_at(chain_ids(session, case.org_id))
        mine = {r.seq for r in by_case[case_id]
                if (v := d.steps.get(r.step_id + SUFFIX)) is not None and v.role in held}
        if case.org_id not in supervised and not mine:
            continue
        for item in case_objections(session, case):
            if item["seq"] not in {r.seq for r in by_case[case_id]}:
                continue
            org = orgs.get(case.org_id)
            item.update(case_id=case.id, case_title=case.title, procedure=d.name, org=org.name if org else "",
                        to_verify=item["seq"] in mine)
            (open_items if item["status"] in ("on_notice", "verifying") else answered).append(item)
    open_items.sort(key=lambda i: i["at"])
    answered.sort(key=lambda i: i["verified_at"] or i["at"], reverse=True)
    return open_items + answered[:recent]


def _descendants_of_roles(session: Session, actor: Actor, roles: Iterable[str]) -> set[int]:
    from .directory import descendants

    wanted = set(roles)
    return descendants(session, {oid for role, oid in actor.assignments if role in wanted})

