"""Kinship conflicts: related-party transactions (WR-08), welfare for cadres' relatives (WR-09), hiring of relatives (WR-22).

People, not accounts: the three rules compare PERSONS (``engine.core.people``). For every person a case
names as applicant, 代办 beneficiary, payee, recipient, candidate, supplier's contact or contractor
(``case_person``), each cadre concerned with the case — whoever did a step of it in a role other than
applicant, and the cadres of the case's own village — is checked: the person is the cadre themself, a
declared relative within ``kin_max_degree``, or of the cadre's household. One finding per (case, cadre,
person), whatever step or field names the person, under the rule of the case's kind (welfare: WR-09,
hiring: WR-22, any other: WR-08). The name-based register (``kinship``) stays a cross-check only for
accounts not yet linked to a person."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import select

from engine.core.people import RELATIONS
from storage.models import (
    AuditEvent,
    Case,
    CaseField,
    CasePerson,
    Kinship,
    Person,
    PersonRelation,
    RoleAssignment,
    User,
)

from engine.services.supervision.registry import (
    KIN_RELATIONS,
    Finding,
    P,
    Row,
    ScanContext,
    normalized,
    rule,
)

# --- WR-08 / WR-09 / WR-22 kinship conflicts -----------------------------------------------
PARTY_FIELDS = (
    "supplier",
    "contractor",
    "winner",
    "payee",
    "transferee",
    "buyer",
    "agency",
    "provider",
    "company",
    "contractor_person",
    "contractor_org",
    "counterparty",
    "recycler",
    "user_org",
)
WELFARE_FIELDS = {
    "B-SVC-01": ("applicant_name", "recipient_name"),
    "B-SVC-02": ("applicant_name",),
    "C-SVC-01": ("applicant_name",),
    "V-AST-05": ("applicant_name",),
}
HIRING_FIELDS = {"V-HR-01": ("candidate_name",), "C-HR-01": ("applicant_name",)}
KIN_DEGREE = P("kin_max_degree", "近亲属关系最远等级(1配偶父母子女,2兄弟姐妹祖孙)", "integer", "2", "级")

# --- by person -----------------------------------------------------------------------------------
CONFLICT_ROLES = ("applicant", "beneficiary", "payee", "recipient", "candidate", "contact", "contractor")
NOT_CADRE_ROLES = frozenset({"applicant"})  # acting in these roles is not handling the case
KIND_ORDER = {"self": 0, "relative": 1, "household": 2}
PERSON_WHAT = {"applicant": "申请人", "beneficiary": "被代办人", "payee": "收款人", "recipient": "对象",
               "candidate": "拟聘人员", "contact": "联系人", "contractor": "承包(承租)人"}


def _rule_of(procedure_id: str, role: str) -> str:
    if procedure_id in WELFARE_FIELDS and role in ("applicant", "beneficiary", "recipient"):
        return "WR-09"
    if procedure_id in HIRING_FIELDS and role in ("applicant", "candidate", "beneficiary"):
        return "WR-22"
    return "WR-08"


def _chunks(values, size: int = 500):
    values = sorted(values)
    for i in range(0, len(values), size):
        yield values[i : i + size]


def person_conflicts(ctx: ScanContext) -> dict[str, list[Finding]]:
    """The person-based findings of WR-08, WR-09 and WR-22 at once (computed once per scan), by rule."""
    cached = getattr(ctx, "_person_conflicts", None)
    if cached is not None:
        return cached
    found: dict[str, list[Finding]] = {"WR-08": [], "WR-09": [], "WR-22": []}
    setattr(ctx, "_person_conflicts", found)
    s = ctx.session
    accounts: dict[str, tuple[int, str]] = {}  # username → (person, display name)
    for username, person_id, display in s.execute(
        select(User.username, User.person_id, User.display_name).where(User.person_id.is_not(None))
    ):
        accounts[username] = (person_id, display or username)
    if not accounts:
        return found
    cadres = {pid for pid, _ in accounts.values()}
    query = (
        select(CasePerson.case_id, CasePerson.role, CasePerson.field, CasePerson.person_id, Case.org_id,
               Case.procedure_id)
        .join(Case, Case.id == CasePerson.case_id)
        .where(CasePerson.role.in_(CONFLICT_ROLES))
        .order_by(CasePerson.id)
    )
    if ctx.case_ids is not None:
        # after a change: the persons the changed cases name, and only their ties to cadres
        named = s.execute(query.where(CasePerson.case_id.in_(ctx.case_ids))).all()
        ties = _ties(s, cadres, {row.person_id for row in named})
        named = [row for row in named if row.person_id in ties]
    else:
        # a full scan: every tie of every cadre, then the persons of any case who have one
        ties = _ties(s, cadres, None)
        named = []
        for chunk in _chunks(set(ties)):
            named.extend(s.execute(query.where(CasePerson.person_id.in_(chunk))).all())
    if not named:
        return found
    cases = {row.case_id for row in named}
    acted: dict[int, set[str]] = defaultdict(set)  # case → accounts that handled it
    for chunk in _chunks(cases):
        for case_id, actor, role in s.execute(
            select(AuditEvent.case_id, AuditEvent.actor, AuditEvent.role).where(
                AuditEvent.case_id.in_(chunk), AuditEvent.type.in_(("step_completed", "case_started"))).distinct()
        ):
            if role not in NOT_CADRE_ROLES and actor in accounts:
                acted[case_id].add(actor)
    village: dict[int, set[str]] = defaultdict(set)  # org → accounts holding a cadre's role there
    for org_id, username, role in s.execute(
        select(RoleAssignment.org_id, User.username, RoleAssignment.role_key)
        .join(User, User.id == RoleAssignment.user_id)
        .where(User.person_id.is_not(None), RoleAssignment.org_id.in_({row.org_id for row in named}))
    ):
        if role not in NOT_CADRE_ROLES:
            village[org_id].add(username)
    names = dict(s.execute(select(Person.id, Person.name).where(Person.id.in_({row.person_id for row in named}))).all())
    extra: dict[int, dict] = {}
    procs = {row.procedure_id for row in named}
    if procs & (set(WELFARE_FIELDS) | set(HIRING_FIELDS)):
        extra = {k: r.text for k, r in ctx.fields(sorted(procs), ["cadre_kin", "recused_members"]).items()}
    best: dict[tuple[str, int, int, int], tuple] = {}
    for row in named:
        concerned = acted.get(row.case_id, set()) | village.get(row.org_id, set())
        by_person: dict[int, list[str]] = defaultdict(list)
        for username in sorted(concerned):
            by_person[accounts[username][0]].append(username)
        limit = ctx.param(row.org_id, "kin_max_degree")
        for cadre, kind, relation, degree in ties[row.person_id]:
            if cadre not in by_person or (kind == "relative" and degree > limit):
                continue
            rule_id = _rule_of(row.procedure_id, row.role)
            if kind != "self" and _exempt(rule_id, row.procedure_id, extra.get(row.case_id, {}), by_person[cadre],
                                          [accounts[u][1] for u in by_person[cadre]]):
                continue
            key = (rule_id, row.case_id, cadre, row.person_id)
            rank = (KIND_ORDER[kind], degree)
            if key not in best or rank < best[key][0]:
                best[key] = (rank, row, kind, relation, degree, by_person[cadre])
    for (rule_id, case_id, cadre, person_id), (_rank, row, kind, relation, degree, usernames) in best.items():
        cadre_name = accounts[usernames[0]][1]
        handled = bool(acted.get(case_id, set()) & set(usernames))
        who = f"{'经办干部' if handled else '本村(社区)干部'}{cadre_name}"
        person = names.get(person_id, "")
        what = PERSON_WHAT.get(row.role, "当事人")
        if kind == "self":
            summary = f"{what}“{person}”就是{who}本人"
        elif kind == "household":
            summary = f"{what}“{person}”与{who}同户"
        else:
            summary = f"{what}“{person}”是{who}申报的{RELATIONS.get(relation, (relation,))[0]}({degree}级)"
        found[rule_id].append(Finding(
            rule_id,
            row.org_id,
            f"{case_id}|person|{cadre}|{person_id}",
            summary,
            {"field": row.field, "role": row.role, "person": person, "person_id": person_id, "cadre": usernames[0],
             "cadres": usernames, "cadre_name": cadre_name, "cadre_person_id": cadre, "handled": handled, "kind": kind,
             "relation": relation, "relation_zh": "本人" if kind == "self" else "同户" if kind == "household"
             else RELATIONS.get(relation, (relation,))[0], "degree": degree},
            case_id=case_id,
            subjects=tuple(usernames),
        ))
    return found


def _ties(s, cadres: set[int], persons: set[int] | None) -> dict[int, list[tuple[int, str, str, int]]]:
    """named person → (cadre's person, self | relative | household, relation, degree), for the given
    persons (None: every person tied to a cadre)."""
    ties: dict[int, list[tuple[int, str, str, int]]] = defaultdict(list)
    for pid in cadres if persons is None else cadres & persons:
        ties[pid].append((pid, "self", "self", 0))
    ends = cadres if persons is None else persons
    if not ends:
        return ties
    for chunk in _chunks(ends):
        for a, b, relation, degree in s.execute(
            select(PersonRelation.person_id, PersonRelation.relative_id, PersonRelation.relation, PersonRelation.degree)
            .where((PersonRelation.person_id.in_(chunk)) | (PersonRelation.relative_id.in_(chunk)))
        ):
            if a == b:
                continue
            if a in cadres and (persons is None or b in persons):
                ties[b].append((a, "relative", relation, degree))
            if b in cadres and (persons is None or a in persons):
                ties[a].append((b, "relative", relation, degree))
    homes: dict[int, int] = {}
    for chunk in _chunks(ends):
        homes.update(s.execute(select(Person.id, Person.household_id).where(
            Person.id.in_(chunk), Person.household_id.is_not(None))).all())
    by_home: dict[int, list[int]] = defaultdict(list)
    for pid, home in homes.items():
        by_home[home].append(pid)
    for chunk in _chunks(set(by_home)):
        for pid, home in s.execute(select(Person.id, Person.household_id).where(Person.household_id.in_(chunk))):
            if persons is None:  # a member of a cadre's household: tied to those cadres
                ties[pid].extend((c, "household", "household", 0) for c in by_home[home] if c != pid)
            elif pid in cadres:  # a cadre in the household of a named person
                for named in by_home[home]:
                    if named != pid:
                        ties[named].append((pid, "household", "household", 0))
    return ties


def _exempt(rule_id: str, procedure_id: str, text: dict, usernames: list[str], names: list[str]) -> bool:
    """A relative declared where the procedure asks for it: B-SVC-02's 备案 of a cadre's relative (judged
    after its verify step), V-HR-01's recusal of the cadre."""
    if rule_id == "WR-09" and procedure_id == "B-SVC-02":
        return text.get("cadre_kin") in (None, "true")
    if rule_id == "WR-22":
        recused = text.get("recused_members") or ""
        return any(n and n in recused for n in [*usernames, *names])
    return False



def _kin(ctx: ScanContext) -> dict[str, list]:
    """The name-based declarations of cadres whose accounts are not linked to a person (the others are
    compared by person)."""
    linked = select(User.username).where(User.person_id.is_not(None))
    rows = ctx.session.execute(
        select(Kinship.org_id, Kinship.cadre, Kinship.cadre_name, Kinship.person_name, Kinship.relation, Kinship.degree)
        .where(Kinship.cadre.not_in(linked))
    ).all()
    by_name: dict[str, list] = defaultdict(list)
    for row in rows:
        by_name[normalized(row.person_name)].append(row)
    return by_name


def _kin_matches(ctx: ScanContext, by_name, org_id: int, name: str):
    chain = set(ctx.chain(org_id))
    for k in by_name.get(normalized(name), []):
        if k.org_id in chain and k.degree <= ctx.param(org_id, "kin_max_degree"):
            yield k


def _kin_findings(
    ctx: ScanContext,
    rule_id: str,
    procs: dict[str, tuple[str, ...]] | None,
    fields: Iterable[str],
    what: str,
    exempt: Callable[[Row, Any], bool] | None = None,
) -> Iterator[Finding]:
    by_name = _kin(ctx)
    if not by_name:
        return
    fields = list(fields)
    query = (
        select(CaseField.case_id, CaseField.name, CaseField.text_value, Case.org_id, Case.procedure_id)
        .join(Case, Case.id == CaseField.case_id)
        .where(CaseField.type.in_(("text", "person")), CaseField.name.in_(fields))
    )
    if procs is not None:
        query = query.where(Case.procedure_id.in_(list(procs)))
    if ctx.case_ids is not None:
        query = query.where(CaseField.case_id.in_(ctx.case_ids))
    names = sorted({row.person_name for rows in by_name.values() for row in rows})
    hits = []
    for i in range(0, len(names), 500):
        hits.extend(ctx.session.execute(query.where(CaseField.text_value.in_(names[i : i + 500]))).all())
    extra = ctx.fields(list(procs), ["cadre_kin", "recused_members"]) if procs and hits else {}
    for case_id, name, value, org_id, proc in hits:
        if procs is not None and name not in procs.get(proc, ()):
            continue
        for k in _kin_matches(ctx, by_name, org_id, value):
            if exempt and exempt(extra.get(case_id) or Row(case_id, org_id, proc, ""), k):
                continue
            relation = KIN_RELATIONS.get(k.relation, (k.relation,))[0]
            yield Finding(
                rule_id,
                org_id,
                f"{case_id}|{name}|{normalized(value)}|{k.cadre}",
                f"{what}“{value}”是干部{k.cadre_name or k.cadre}的{relation}",
                {
                    "field": name,
                    "person": value,
                    "cadre": k.cadre,
                    "cadre_name": k.cadre_name,
                    "relation": k.relation,
                    "relation_zh": relation,
                    "degree": k.degree,
                },
                case_id=case_id,
                subjects=(k.cadre,),
            )


@rule(
    "WR-08",
    "关联交易(亲属)预警",
    "Related-party transaction (kinship)",
    severity="red",
    inspects="收款人、供应商联系人、承包(承租)人、申请人等当事人(按人员库比对到人) vs 经办干部和本村(社区)干部本人、申报的近亲属、同户人员",
    condition="当事人是经办该事项的干部或本村(社区)干部本人、其申报的近亲属(在规定等级内)或同户人员",
    params=(KIN_DEGREE,),
)
def related_party(ctx: ScanContext) -> Iterator[Finding]:
    yield from person_conflicts(ctx)["WR-08"]
    yield from _kin_findings(ctx, "WR-08", None, PARTY_FIELDS, "交易对方或收款人")


@rule(
    "WR-09",
    "优亲厚友(救助对象为干部亲属)",
    "Welfare beneficiary related to cadres",
    severity="red",
    procedures=list(WELFARE_FIELDS),
    inspects="低保、临时救助、公租房、成员身份确认的申请人、被代办人(按人员库比对到人) vs 经办干部和本村(社区)干部本人、近亲属、同户人员;亲属备案",
    condition="对象是经办干部或本村(社区)干部本人(包括干部以代办名义为自己申请);或为其近亲属、同户人员,且办理中没有如实登记“干部近亲属”(备案)",
    params=(KIN_DEGREE,),
)
def welfare_kin(ctx: ScanContext) -> Iterator[Finding]:
    yield from person_conflicts(ctx)["WR-09"]
    yield from _kin_findings(
        ctx,
        "WR-09",
        WELFARE_FIELDS,
        {f for v in WELFARE_FIELDS.values() for f in v},
        "救助(保障)对象",
        exempt=_kin_filed,
    )


def _kin_filed(row: Row, k) -> bool:
    """B-SVC-02 records whether the applicant is a cadre's relative (备案) at its verify step: judge
    after it, and not when it was declared."""
    if row.procedure_id != "B-SVC-02":
        return False
    return row.text.get("cadre_kin") in (None, "true")


@rule(
    "WR-22",
    "亲属任用预警",
    "Hiring of cadres' relatives",
    severity="red",
    procedures=list(HIRING_FIELDS),
    inspects="拟聘人员(按人员库比对到人) vs 经办干部和本村(社区)干部本人、近亲属、同户人员;回避登记",
    condition="拟聘人员为干部本人、近亲属或同户人员,且回避登记中没有该干部",
    params=(KIN_DEGREE,),
)
def hiring_kin(ctx: ScanContext) -> Iterator[Finding]:
    def recused(row: Row, k) -> bool:
        text = row.text.get("recused_members") or ""
        return bool(k.cadre_name and k.cadre_name in text) or k.cadre in text

    yield from person_conflicts(ctx)["WR-22"]
    yield from _kin_findings(
        ctx, "WR-22", HIRING_FIELDS, {f for v in HIRING_FIELDS.values() for f in v}, "拟聘人员", exempt=recused
    )
