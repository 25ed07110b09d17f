"""Supervision warnings (预警): rules over what cases record, raised once per set of facts.

Every rule has an id (``WR-nn`` from the catalog's ``warning_rules``, ``XW-nn`` for rules that follow
from the procedure definitions themselves), a Chinese and English name, what it inspects, its
parameters (local parameters: set at the district, township or village with ``xiaowei params set``,
the nearest setting up the tree wins, like every threshold) and a severity colour (红/黄/蓝).

A rule is one function over a :class:`ScanContext`: it reads the derived tables (``case_field``,
``work_item``, ``timer_due``, ``case_instance``) and, for a few order and timing rules, a narrow
selection of audit events, with set-based queries, and yields :class:`Finding` s. The same function
serves

* the **incremental** evaluation after every engine change of a case (``case_ids`` = that case; the
  cross-case rules widen to the case's village and read it through indexed queries), and
* the **full scan** (``case_ids`` = None: every case at once, no case is deserialized).

A finding's fingerprint is the rule plus the identity of its facts; the ``warning`` table holds it
under a unique constraint, so the same facts never raise twice (inserts skip existing fingerprints).
Raising writes only the ``warning`` row (the facts are in the audit trail and a rescan reproduces
it); acknowledging, resolving and dismissing are audited in the case's chain (or the system chain).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Iterable

from sqlalchemy import func, insert, or_, select
from sqlalchemy.orm import Session

from engine.core import audit, catalogue, directory
from engine.core.errors import Conflict, Forbidden, InvalidData, NotFound
from storage.db import dialect_insert
from storage.models import (
    AuditEvent, Case, Kinship, Organization, PersonRelation, SupervisionWarning, WarningSubject,
)

from .registry import (  # noqa: F401  (the warnings API: re-exported)
    GRADE_PARAMS, HANDLER_ROLES, KIN_RELATIONS, LOCAL, OPEN_STATUSES, READER_ROLES, RULES, SEVERITIES, SEVERITY_ORDER,
    STATUSES, TRANSITIONS, Finding, Row, Rule, RuleParam, ScanContext, declared_params, log,
)
from . import rules as _rules  # noqa: F401  (registers every rule)
from engine.services.supervision.rules.conduct import CHECK_AREAS  # noqa: F401
from engine.services.supervision.rules.timing import late_steps  # noqa: F401


# --- storing ----------------------------------------------------------------------------------------
def fingerprint(rule_id: str, key: str) -> str:
    return hashlib.sha256(f"{rule_id}|{key}".encode("utf-8")).hexdigest()


def _insert(session: Session):
    insert = dialect_insert(session.get_bind().dialect.name)
    return insert(SupervisionWarning).on_conflict_do_nothing(index_elements=["fingerprint"])


def store(session: Session, findings: Iterable[Finding], now: datetime | None = None) -> list[dict]:
    """Insert the findings whose fingerprints are new; the warnings raised (as dicts)."""
    now = now or audit.db_time()
    by_print: dict[str, Finding] = {}
    for f in findings:
        by_print.setdefault(fingerprint(f.rule, f.key), f)
    if not by_print:
        return []
    prints = list(by_print)
    existing: set[str] = set()
    for i in range(0, len(prints), 900):
        existing.update(session.scalars(select(SupervisionWarning.fingerprint)
                                        .where(SupervisionWarning.fingerprint.in_(prints[i:i + 900]))))
    new = [p for p in prints if p not in existing]
    if not new:
        return []
    rows = [{"fingerprint": p, "rule_id": by_print[p].rule, "severity": RULES[by_print[p].rule].severity,
             "org_id": by_print[p].org_id, "case_id": by_print[p].case_id, "summary": by_print[p].summary[:300],
             "facts": audit.to_json(by_print[p].facts), "status": "raised", "raised_at": now, "updated_at": now,
             "handled_by": "", "opinion": "", "supervision_case_id": None} for p in new]
    statement = _insert(session)
    for i in range(0, len(rows), 500):
        session.execute(statement, rows[i:i + 500])
    ids: dict[str, int] = {}
    for i in range(0, len(new), 900):
        ids.update(dict(session.execute(select(SupervisionWarning.fingerprint, SupervisionWarning.id)
                                        .where(SupervisionWarning.fingerprint.in_(new[i:i + 900]))).all()))
    # who each warning involves beyond the people who acted in its case (those are read from the
    # trail when needed, through the (actor, case_id) index): the rule's subjects
    from . import figures

    figures.touch(session, {by_print[p].org_id for p in new if by_print[p].org_id is not None})  # dashboards count them
    subjects = [{"warning_id": wid, "subject": subject[:100]}
                for p, wid in ids.items() for subject in sorted(set(by_print[p].subjects)) if subject]
    for i in range(0, len(subjects), 1000):
        session.execute(insert(WarningSubject), subjects[i:i + 1000])
    raised = []
    for p, wid in sorted(ids.items(), key=lambda kv: kv[1]):
        f = by_print[p]
        raised.append({"id": wid, "rule": f.rule, "severity": RULES[f.rule].severity, "case_id": f.case_id,
                       "org_id": f.org_id, "summary": f.summary})
    return raised


def find(session: Session, *, case_ids: set[int] | None = None, rules: Iterable[str] | None = None,
         procedure_id: str | None = None, now: datetime | None = None) -> tuple[list[Finding], datetime]:
    """Run rules (all, or those named) over the changed cases (or all cases): the findings and the
    time they were found at. Only reads: the rules may run in a read transaction."""
    ctx = ScanContext(session, case_ids=case_ids, now=now)
    findings: list[Finding] = []
    for r in RULES.values():
        if rules is not None and r.id not in rules:
            continue
        if procedure_id is not None and r.procedures is not None and procedure_id not in r.procedures:
            continue
        findings.extend(r.check(ctx))
    return findings, ctx.now


def evaluate(session: Session, *, case_ids: set[int] | None = None, rules: Iterable[str] | None = None,
             procedure_id: str | None = None, now: datetime | None = None) -> list[dict]:
    """Run rules (all, or those named) over the changed cases (or all cases) and store new warnings."""
    findings, at = find(session, case_ids=case_ids, rules=rules, procedure_id=procedure_id, now=now)
    return store(session, findings, at)


def find_for_case(session: Session, case_id: int) -> tuple[list[Finding], datetime | None]:
    """The findings of the incremental evaluation after a change of one case (its rules, cross-case
    ones in its village), and when they were found; only reads."""
    proc = session.scalar(select(Case.procedure_id).where(Case.id == case_id))
    if proc is None:
        return [], None
    return find(session, case_ids={case_id}, procedure_id=proc)


def evaluate_case(session: Session, case_id: int) -> list[dict]:
    """The incremental evaluation after a change of one case (its rules, cross-case ones in its village)."""
    findings, at = find_for_case(session, case_id)
    return store(session, findings, at)


def scan(session: Session, *, rules: Iterable[str] | None = None) -> list[dict]:
    """Every rule over every case (set-based)."""
    return evaluate(session, rules=set(rules) if rules is not None else None)


TIMED_RULES = frozenset(r_id for r_id, r in RULES.items() if r.timed)


# --- reading and handling -------------------------------------------------------------------------
def visible_orgs(session: Session, actor: directory.Actor, roles=READER_ROLES) -> set[int]:
    return directory.descendants(session, {oid for role, oid in actor.assignments if role in roles})


def visible_villages(session: Session, actor: directory.Actor) -> list[tuple[str, str]]:
    """(code, name) of the villages and communities whose warnings the actor may read."""
    ids = visible_orgs(session, actor)
    return [(c, n) for c, n in session.execute(select(Organization.code, Organization.name)
                                               .where(Organization.id.in_(ids or {-1}),
                                                      Organization.kind.in_(("village", "community")))
                                               .order_by(Organization.code))]


def may_read(actor: directory.Actor | None) -> bool:
    return actor is not None and any(role in READER_ROLES for role, _ in actor.assignments)


def list_warnings(session: Session, *, actor: directory.Actor | None = None, severity: str | None = None,
                  rule: str | None = None, org_code: str | None = None, status: str | None = None,
                  case_id: int | None = None, subject: str | None = None, limit: int = 50,
                  offset: int = 0) -> dict:
    """Warnings newest first (red first among the same day), filtered; ``actor``: only their scope."""
    query = select(SupervisionWarning, Organization.code, Organization.name).join(
        Organization, Organization.id == SupervisionWarning.org_id)
    if actor is not None:
        query = query.where(SupervisionWarning.org_id.in_(visible_orgs(session, actor) or {-1}))
    if severity:
        query = query.where(SupervisionWarning.severity == severity)
    if rule:
        query = query.where(SupervisionWarning.rule_id == rule)
    if status == "open":
        query = query.where(SupervisionWarning.status.in_(OPEN_STATUSES))
    elif status:
        query = query.where(SupervisionWarning.status == status)
    if org_code:
        org = directory.get_org(session, org_code)
        query = query.where(SupervisionWarning.org_id.in_(directory.descendants(session, [org.id])))
    if case_id is not None:
        query = query.where(SupervisionWarning.case_id == case_id)
    if subject:  # named by the rule, or acted in the warning's case
        query = query.where(or_(
            SupervisionWarning.id.in_(select(WarningSubject.warning_id).where(WarningSubject.subject == subject)),
            SupervisionWarning.case_id.in_(select(AuditEvent.case_id).where(
                AuditEvent.actor == subject, AuditEvent.type.in_(("case_started", "step_completed"))))))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(query.order_by(SupervisionWarning.raised_at.desc(), SupervisionWarning.id.desc())
                           .limit(limit).offset(offset)).all()
    return {"total": total, "limit": limit, "offset": offset,
            "warnings": [warning_dict(w, code, name) for w, code, name in rows]}


def warning_dict(w: SupervisionWarning, org_code: str = "", org_name: str = "") -> dict:
    r = RULES.get(w.rule_id)
    return {"id": w.id, "rule": w.rule_id, "rule_zh": r.zh if r else w.rule_id, "rule_en": r.en if r else "",
            "severity": w.severity, "severity_zh": SEVERITIES.get(w.severity, w.severity),
            "status": w.status, "status_zh": STATUSES.get(w.status, w.status), "org": org_code, "org_name": org_name,
            "case_id": w.case_id, "summary": w.summary, "facts": json.loads(w.facts),
            "raised_at": audit.iso(w.raised_at), "updated_at": audit.iso(w.updated_at),
            "handled_by": w.handled_by, "opinion": w.opinion, "supervision_case_id": w.supervision_case_id,
            "fingerprint": w.fingerprint}


def get_warning(session: Session, warning_id: int, actor: directory.Actor | None = None) -> dict:
    row = session.execute(select(SupervisionWarning, Organization.code, Organization.name)
                          .join(Organization, Organization.id == SupervisionWarning.org_id)
                          .where(SupervisionWarning.id == warning_id)).first()
    if row is None or (actor is not None and row[0].org_id not in visible_orgs(session, actor)):
        raise NotFound(f"没有编号为 {warning_id} 的预警 / no warning {warning_id}")
    data = warning_dict(*row)
    named = set(session.scalars(select(WarningSubject.subject).where(WarningSubject.warning_id == warning_id)))
    acted = set(session.scalars(select(AuditEvent.actor).where(
        AuditEvent.case_id == row[0].case_id, AuditEvent.type.in_(("case_started", "step_completed"))))) \
        if row[0].case_id is not None else set()
    data["subjects"] = sorted((named | acted) - {"", "system", "public"})
    events = select(AuditEvent).where(AuditEvent.type.like("warning_%"))
    events = events.where(AuditEvent.case_id == row[0].case_id) if row[0].case_id is not None else \
        events.where(AuditEvent.chain == audit.SYSTEM_CHAIN)
    data["history"] = [audit.event_dict(e) for e in session.scalars(events.order_by(AuditEvent.at, AuditEvent.id))
                       if json.loads(e.data).get("warning_id") == warning_id]
    return data


def handle(session: Session, warning_id: int, action: str, username: str, opinion: str) -> dict:
    """Acknowledge, resolve or dismiss a warning with an opinion, as a supervisor of its village; audited
    in the case's chain (or the system chain when the warning has no case)."""
    if action not in TRANSITIONS:
        raise InvalidData(f"未知操作 {action} / unknown action", {"action": action})
    opinion = (opinion or "").strip()
    if not opinion:
        raise InvalidData("须填写处理意见 / an opinion is required", {"opinion": "required"})
    if len(opinion) > 2000:
        raise InvalidData("处理意见不能超过2000字 / at most 2000 characters", {"opinion": "too long"})
    actor = directory.load_actor(session, username)
    w = session.get(SupervisionWarning, warning_id)
    if w is None:
        raise NotFound(f"没有编号为 {warning_id} 的预警 / no warning {warning_id}")
    chain = directory.chain_ids(session, w.org_id)
    held = actor.roles_at(chain) & HANDLER_ROLES
    if not held:
        raise Forbidden(f"{username} 不是本村(社区)或上级的监督人员,无权处理预警 / {username} may not handle this warning",
                        action=f"warning_{action}")
    allowed, target, verb = TRANSITIONS[action]
    if w.status not in allowed:
        raise Conflict(f"预警已{STATUSES.get(w.status, w.status)},不能{verb} / the warning is {w.status}")
    before = w.status
    data = {"warning_id": w.id, "rule": w.rule_id, "severity": w.severity, "summary": w.summary,
            "fingerprint": w.fingerprint, "status_before": before, "status": target, "opinion": opinion}
    role = sorted(held)[0]
    if w.case_id is not None:
        from engine.core.cases import lock_case

        case = lock_case(session, w.case_id)
        audit.append_case_event(session, case, f"warning_{target}", actor=username, role=role, data=data)
    else:
        audit.append_system_event(session, f"warning_{target}", actor=username, role=role, data=data)
    w.status, w.opinion, w.handled_by, w.updated_at = target, opinion, username, audit.db_time()
    from . import figures

    figures.touch(session, {w.org_id})  # the dashboards count open warnings
    session.flush()
    return {"id": w.id, "status": target, "status_zh": STATUSES[target]}


def supervise(session: Session, warning_id: int, username: str, opinion: str) -> dict:
    """督办: a red warning opens a supervision case (T-SUP-01 at the village's township) and is
    acknowledged with the opinion."""
    from engine.core import cases

    w = session.get(SupervisionWarning, warning_id)
    if w is None:
        raise NotFound(f"没有编号为 {warning_id} 的预警 / no warning {warning_id}")
    if w.severity != "red":
        raise Conflict("只有红色预警可以督办 / only red warnings open a supervision case")
    if w.supervision_case_id is not None:
        raise Conflict(f"已督办(事项{w.supervision_case_id}) / already under supervision")
    org = session.get(Organization, w.org_id)
    township = session.get(Organization, org.parent_id) if org and org.kind != "township" else org
    if township is None or township.kind != "township":
        raise InvalidData("预警所在单位没有上级镇(街道) / no township above", {})
    if w.status == "raised":
        handle(session, warning_id, "acknowledge", username, opinion)
    elif not (opinion or "").strip():
        raise InvalidData("须填写处理意见 / an opinion is required", {"opinion": "required"})
    from .explain import supervision_initial  # the first step filled in from the warning, in words

    initial = supervision_initial(session, get_warning(session, warning_id))
    case = cases.start_case(session, "T-SUP-01", township.code, username,
                            {"title": f"督办:预警{w.id} {RULES[w.rule_id].zh}({org.name})"[:200], **initial})
    w.supervision_case_id = case.id
    data = {"warning_id": w.id, "rule": w.rule_id, "supervision_case_id": case.id, "opinion": opinion.strip()}
    if w.case_id is not None:
        from engine.core.cases import lock_case

        audit.append_case_event(session, lock_case(session, w.case_id), "warning_supervised", actor=username,
                                role="", data=data)
    else:
        audit.append_system_event(session, "warning_supervised", actor=username, data=data)
    session.flush()
    return {"id": w.id, "supervision_case_id": case.id}


# --- the kinship register -------------------------------------------------------------------------
def add_kin(session: Session, org_code: str, cadre: str, person_name: str, relation: str, *, actor: str,
            note: str = "", degree: int | None = None) -> dict:
    """Declare a relationship: the cadre themself (``self``) or a relative; audited in the system chain.
    A cadre declares their own; supervisors (and administrators) of the village maintain any.

    Kinship by person: the cadre's account gets its person (``people.person_for_user``), the relative is
    found in (or added to) the village's register by name (``people.find_or_add``) and the relation is
    declared with its degree (``people.declare_relative``); the rules compare those persons. The
    name-based row is kept as the declaration people list (``xiaowei kin list``)."""
    org = directory.get_org(session, org_code)
    if relation not in KIN_RELATIONS:
        raise InvalidData(f"未知亲属关系 {relation} / unknown relation", {"relation": ", ".join(KIN_RELATIONS)})
    person_name = (person_name or "").strip()
    if not person_name or len(person_name) > 100:
        raise InvalidData("须填写姓名(不超过100字) / a name is required", {"person_name": "required"})
    cadre_user = directory.get_user(session, cadre)
    if actor not in ("cli", "system") and actor != cadre:
        who = directory.load_actor(session, actor)
        if not who.roles_at(directory.chain_ids(session, org.id)) & (HANDLER_ROLES | catalogue.ADMIN_ROLES):
            raise Forbidden(f"{actor} 只能申报本人的亲属关系 / {actor} may declare only their own relatives",
                            action="kin_add")
    row = Kinship(org_id=org.id, cadre=cadre, cadre_name=cadre_user.display_name or "", person_name=person_name,
                  relation=relation, degree=KIN_RELATIONS[relation][1] if degree is None else int(degree),
                  note=(note or "")[:200], declared_by=actor, created_at=audit.db_time())
    if session.scalar(select(Kinship.id).where(Kinship.org_id == org.id, Kinship.cadre == cadre,
                                               Kinship.person_name == person_name, Kinship.relation == relation)):
        raise Conflict("已登记过这一关系 / already declared")
    session.add(row)
    session.flush()
    audit.append_system_event(session, "kin_declared", actor=actor, data={
        "id": row.id, "org": org.code, "cadre": cadre, "person_name": person_name, "relation": relation,
        "degree": row.degree})
    _declare_by_person(session, org, cadre, person_name, relation, row.degree, actor=actor, note=note)
    return kin_dict(row, org.code)


def _declare_by_person(session: Session, org: Organization, cadre: str, person_name: str, relation: str,
                       degree: int, *, actor: str, note: str) -> None:
    from engine.core import people

    me = people.person_for_user(session, cadre, actor=actor)
    if relation == "self":
        return  # the account's person is the cadre themself
    relative = people.find_or_add(session, person_name, org=org, actor=actor).person
    if relative.id == me.id or session.scalar(select(PersonRelation.id).where(
            PersonRelation.person_id == me.id, PersonRelation.relative_id == relative.id,
            PersonRelation.relation == relation)):
        return
    people.declare_relative(session, me, relative, relation, actor=actor, degree=degree, note=note)


def kin_dict(k: Kinship, org_code: str = "") -> dict:
    return {"id": k.id, "org": org_code, "cadre": k.cadre, "cadre_name": k.cadre_name, "person_name": k.person_name,
            "relation": k.relation, "relation_zh": KIN_RELATIONS.get(k.relation, (k.relation,))[0],
            "degree": k.degree, "note": k.note, "declared_by": k.declared_by, "created_at": audit.iso(k.created_at)}


def list_kin(session: Session, org_code: str | None = None, cadre: str | None = None) -> list[dict]:
    query = select(Kinship, Organization.code).join(Organization, Organization.id == Kinship.org_id)
    if org_code:
        org = directory.get_org(session, org_code)
        query = query.where(Kinship.org_id.in_(directory.descendants(session, [org.id])))
    if cadre:
        query = query.where(Kinship.cadre == cadre)
    return [kin_dict(k, code) for k, code in session.execute(query.order_by(Kinship.id))]
