"""Kinship conflicts: related-party transactions (WR-08), welfare for cadres' relatives (WR-09), hiring of relatives (WR-22)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import select

from storage.models import (
    Case,
    CaseField,
    Kinship,
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


def _kin(ctx: ScanContext) -> dict[str, list]:
    rows = ctx.session.execute(
        select(Kinship.org_id, Kinship.cadre, Kinship.cadre_name, Kinship.person_name, Kinship.relation, Kinship.degree)
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
    inspects="供应商、承包方、中标人、收款方等 vs 干部近亲属库",
    condition="交易对方或收款人是本村(或上级)干部本人或其申报的近亲属、投资合伙关系人",
    params=(KIN_DEGREE,),
)
def related_party(ctx: ScanContext) -> Iterator[Finding]:
    return _kin_findings(ctx, "WR-08", None, PARTY_FIELDS, "交易对方或收款人")


@rule(
    "WR-09",
    "优亲厚友(救助对象为干部亲属)",
    "Welfare beneficiary related to cadres",
    severity="red",
    procedures=list(WELFARE_FIELDS),
    inspects="低保、临时救助、公租房、成员身份确认的申请人 vs 干部近亲属库、亲属备案",
    condition="对象为干部近亲属,且办理中没有如实登记“干部近亲属”(备案)",
    params=(KIN_DEGREE,),
)
def welfare_kin(ctx: ScanContext) -> Iterator[Finding]:
    return _kin_findings(
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
    inspects="拟聘人员 vs 两委成员近亲属库、回避登记",
    condition="拟聘人员为干部近亲属,且回避登记中没有该干部",
    params=(KIN_DEGREE,),
)
def hiring_kin(ctx: ScanContext) -> Iterator[Finding]:
    def recused(row: Row, k) -> bool:
        text = row.text.get("recused_members") or ""
        return bool(k.cadre_name and k.cadre_name in text) or k.cadre in text

    return _kin_findings(
        ctx, "WR-22", HIRING_FIELDS, {f for v in HIRING_FIELDS.values() for f in v}, "拟聘人员", exempt=recused
    )
