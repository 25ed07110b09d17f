"""The registry of warning rules: a rule's declaration (:func:`rule`), its parameters, the
:class:`ScanContext` it reads the derived tables through, and the helpers the rule families share."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Callable, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core import audit, catalogue, procedures
from engine.core.definitions import parse_param_value
from storage.models import (
    AuditEvent,
    Case,
    CaseField,
    Organization,
    ParameterSetting,
)

log = logging.getLogger("engine.services.supervision.warnings")

SEVERITIES = {"red": "红", "yellow": "黄", "blue": "蓝"}
SEVERITY_ORDER = {"red": 0, "yellow": 1, "blue": 2}
STATUSES = {"raised": "待处理", "acknowledged": "已签收", "resolved": "已办结", "dismissed": "已排除"}
OPEN_STATUSES = ("raised", "acknowledged")
TRANSITIONS = {
    "acknowledge": ({"raised"}, "acknowledged", "签收"),
    "resolve": ({"raised", "acknowledged"}, "resolved", "办结"),
    "dismiss": ({"raised", "acknowledged"}, "dismissed", "排除"),
}
LOCAL = timedelta(hours=8)  # China time: dates and hours people see
# Who handles warnings: the supervisors (village supervision committee, liaison station, township
# discipline office, supervision office). Township administrators may read them.
HANDLER_ROLES = catalogue.SUPERVISOR_ROLES
READER_ROLES = catalogue.SUPERVISOR_ROLES | catalogue.ADMIN_ROLES
KIN_RELATIONS = {
    "self": ("本人", 0),
    "spouse": ("配偶", 1),
    "parent": ("父母", 1),
    "child": ("子女", 1),
    "sibling": ("兄弟姐妹", 2),
    "grandparent": ("祖父母、外祖父母", 2),
    "grandchild": ("孙子女、外孙子女", 2),
    "in_law": ("配偶的父母、子女的配偶", 2),
    "cousin": ("堂表兄弟姐妹", 3),
    "uncle_aunt": ("伯叔姑舅姨", 3),
    "nephew_niece": ("侄甥", 3),
    "partner": ("投资或合伙关系", 1),
    "other": ("其他利害关系", 3),
}


# --- the registry ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RuleParam:
    """A rule's local parameter (declared like a procedure's: ``xiaowei params set KEY VALUE --org``)."""

    key: str
    label: str
    type: str  # money | integer | days | ratio
    default: Any
    unit: str = ""
    source: str = "预警规则默认值"


@dataclass
class Finding:
    rule: str
    org_id: int
    key: str  # the identity of the facts (with the rule id: the fingerprint)
    summary: str
    facts: dict
    case_id: int | None = None
    subjects: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    id: str
    zh: str
    en: str
    inspects: str
    condition: str
    severity: str
    params: tuple[RuleParam, ...]
    procedures: frozenset[str] | None  # changes of these procedures' cases can affect it (None: any)
    check: Callable[["ScanContext"], Iterable[Finding]]
    timed: bool = False  # also depends on the passing of time: evaluated by tick and scan

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "zh": self.zh,
            "en": self.en,
            "inspects": self.inspects,
            "condition": self.condition,
            "severity": self.severity,
            "severity_zh": SEVERITIES[self.severity],
            "params": [
                {"key": p.key, "label": p.label, "type": p.type, "default": str(p.default), "unit": p.unit}
                for p in self.params
            ],
            "procedures": sorted(self.procedures) if self.procedures else None,
        }


RULES: dict[str, Rule] = {}


def rule(
    id: str,
    zh: str,
    en: str,
    *,
    inspects: str,
    condition: str,
    severity: str,
    params: tuple[RuleParam, ...] = (),
    procedures: Iterable[str] | None = None,
    timed: bool = False,
):
    def register(fn):
        RULES[id] = Rule(
            id,
            zh,
            en,
            inspects,
            condition,
            severity,
            params,
            frozenset(procedures) if procedures is not None else None,
            fn,
            timed,
        )
        return fn

    return register


# Village grades (engine.supervision.grades) read their weights and thresholds the same way.
GRADE_PARAMS = (
    RuleParam("grade_weight_red", "评级扣分:每条未办结红色预警", "integer", "10", "分", "评级默认值"),
    RuleParam("grade_weight_yellow", "评级扣分:每条未办结黄色预警", "integer", "4", "分", "评级默认值"),
    RuleParam("grade_weight_blue", "评级扣分:每条未办结蓝色预警", "integer", "1", "分", "评级默认值"),
    RuleParam("grade_weight_overdue", "评级扣分:当月环节超时率为100%时", "integer", "30", "分", "评级默认值"),
    RuleParam("grade_weight_disclosure", "评级扣分:每个季度财务公开逾期(近一年)", "integer", "10", "分", "评级默认值"),
    RuleParam("grade_a_min", "A级最低分", "integer", "90", "分", "评级默认值"),
    RuleParam("grade_b_min", "B级最低分", "integer", "75", "分", "评级默认值"),
    RuleParam("grade_c_min", "C级最低分(以下为D级)", "integer", "60", "分", "评级默认值"),
)


def declared_params() -> dict[str, RuleParam]:
    found: dict[str, RuleParam] = {}
    for r in RULES.values():
        for p in r.params:
            found.setdefault(p.key, p)
    for p in GRADE_PARAMS:
        found.setdefault(p.key, p)
    return found


procedures.declare_params(declared_params)


# --- the context a rule runs in ---------------------------------------------------------------
@dataclass
class Row:
    """A case with the latest values of some of its fields (from ``case_field``)."""

    case_id: int
    org_id: int
    procedure_id: str
    status: str
    text: dict = field(default_factory=dict)
    number: dict = field(default_factory=dict)
    step: dict = field(default_factory=dict)

    def date(self, name: str) -> date | None:
        return as_date(self.text.get(name))

    def amount(self, name: str) -> Decimal | None:
        return self.number.get(name)


class ScanContext:
    """What rules read: the session, the time, which cases changed (None: all), local parameters."""

    def __init__(self, session: Session, *, case_ids: set[int] | None = None, now: datetime | None = None):
        self.session = session
        self.case_ids = case_ids
        self.now = now or audit.db_time()
        self.today = (self.now + LOCAL).date()
        self._orgs: dict[int, tuple[int | None, str, str, str]] | None = None
        self._settings: dict[tuple[int, str], str] | None = None
        self._param_cache: dict[tuple[int, str], Any] = {}
        self._scope_orgs: set[int] | None = None
        self._scope_procedures: set[str] = set()

    # organizations
    def orgs(self) -> dict[int, tuple[int | None, str, str, str]]:
        """id → (parent id, code, name, kind)."""
        if self._orgs is None:
            self._orgs = {
                oid: (parent, code, name, kind)
                for oid, parent, code, name, kind in self.session.execute(
                    select(
                        Organization.id, Organization.parent_id, Organization.code, Organization.name, Organization.kind
                    )
                )
            }
        return self._orgs

    def chain(self, org_id: int) -> list[int]:
        out, seen = [], set()
        current: int | None = org_id
        while current is not None and current not in seen:
            seen.add(current)
            out.append(current)
            current = self.orgs().get(current, (None,))[0]
        return out

    def scope_orgs(self) -> set[int] | None:
        """The villages of the changed cases (cross-case rules look there), None for a full scan."""
        if self.case_ids is None:
            return None
        if self._scope_orgs is None:
            found = self.session.execute(select(Case.org_id, Case.procedure_id).where(Case.id.in_(self.case_ids))).all()
            self._scope_orgs = {org_id for org_id, _ in found}
            self._scope_procedures = {proc for _, proc in found}
        return self._scope_orgs

    def scope_procedures(self) -> set[str] | None:
        """The procedures of the changed cases, None for a full scan."""
        if self.case_ids is None:
            return None
        self.scope_orgs()
        return self._scope_procedures

    # parameters
    def param(self, org_id: int, key: str) -> Any:
        cached = self._param_cache.get((org_id, key))
        if cached is not None:
            return cached
        if self._settings is None:
            keys = list(declared_params())
            self._settings = {
                (oid, k): v
                for oid, k, v in self.session.execute(
                    select(ParameterSetting.org_id, ParameterSetting.key, ParameterSetting.value).where(
                        ParameterSetting.key.in_(keys)
                    )
                )
            }
        declared = declared_params()[key]
        value = declared.default
        for oid in self.chain(org_id):
            if (oid, key) in self._settings:
                try:
                    value = parse_param_value(declared.type, self._settings[(oid, key)])
                    break
                except ValueError:
                    continue
        value = parse_param_value(declared.type, value)
        if isinstance(value, Fraction):
            value = Decimal(value.numerator) / Decimal(value.denominator)
        self._param_cache[(org_id, key)] = value
        return value

    # reads
    def fields(
        self, procedures: Iterable[str], names: Iterable[str], *, by_org: bool = False, require: str | None = None
    ) -> dict[int, Row]:
        """Cases of ``procedures`` with the latest values of ``names``: the changed cases, their
        villages' cases (``by_org``), or every case (full scan). ``require``: only cases that have it."""
        procedures, names = list(procedures), list(names)
        if self.case_ids is not None and not by_org and not set(procedures) & (self.scope_procedures() or set()):
            return {}  # the changed cases are of other procedures: nothing to read
        query = (
            select(
                CaseField.case_id,
                CaseField.name,
                CaseField.text_value,
                CaseField.number_value,
                CaseField.step_id,
                Case.org_id,
                Case.procedure_id,
                Case.status,
            )
            .join(Case, Case.id == CaseField.case_id)
            .where(Case.procedure_id.in_(procedures), CaseField.name.in_(names))
        )
        if self.case_ids is not None:
            if by_org:
                query = query.where(Case.org_id.in_(self.scope_orgs() or {-1}))
            else:
                query = query.where(CaseField.case_id.in_(self.case_ids))
        rows: dict[int, Row] = {}
        for case_id, name, text, number, step, org_id, proc, status in self.session.execute(query):
            row = rows.get(case_id)
            if row is None:
                row = rows[case_id] = Row(case_id, org_id, proc, status)
            row.text[name] = text
            row.step[name] = step
            if number is not None:
                row.number[name] = Decimal(number)
        if require:
            rows = {k: r for k, r in rows.items() if r.text.get(require)}
        return rows

    def events(self, types: Iterable[str], *, like: str | None = None, procedures: Iterable[str] | None = None):
        """Audit events of the changed cases (or all) of some types, data parsed: (case_id, seq, type,
        at, actor, role, data, org_id, procedure_id, version_id)."""
        query = (
            select(
                AuditEvent.case_id,
                AuditEvent.seq,
                AuditEvent.type,
                AuditEvent.at,
                AuditEvent.actor,
                AuditEvent.role,
                AuditEvent.data,
                Case.org_id,
                Case.procedure_id,
                Case.procedure_version_id,
            )
            .join(Case, Case.id == AuditEvent.case_id)
            .where(AuditEvent.type.in_(list(types)))
        )
        if like:
            query = query.where(AuditEvent.data.like(like))
        if self.case_ids is not None:  # (by case: the case index, never a scan of a procedure's cases)
            query = query.where(AuditEvent.case_id.in_(self.case_ids))
        elif procedures is not None:
            query = query.where(Case.procedure_id.in_(list(procedures)))
        for row in self.session.execute(query.order_by(AuditEvent.case_id, AuditEvent.seq)):
            yield (row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), row[7], row[8], row[9])


def as_date(text: Any) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(str(text)[:10])
    except ValueError:
        return None


def local_time(at: datetime) -> datetime:
    return at + LOCAL


def normalized(text: str | None) -> str:
    return re.sub(r"\s+", "", str(text or "")).strip().lower()


def money_text(value: Decimal | None) -> str:
    return f"{value:,.2f}" if value is not None else "—"


# --- windows: N items of a group within D days ---------------------------------------------
def windows(
    items: list[tuple[date, Decimal, int]], days: int, min_count: int, threshold: Decimal, *, need_total: bool = True
) -> list[list[tuple[date, Decimal, int]]]:
    """Disjoint windows (earliest first) of at least ``min_count`` items, each under ``threshold``,
    spanning at most ``days`` days, together at or over ``threshold`` (when ``need_total``)."""
    items = sorted((i for i in items if i[1] < threshold), key=lambda i: (i[0], i[2]))
    found, start = [], 0
    while start < len(items):
        end = start
        while end + 1 < len(items) and (items[end + 1][0] - items[start][0]).days <= days:
            end += 1
        window = items[start : end + 1]
        if len(window) >= min_count and (not need_total or sum(i[1] for i in window) >= threshold):
            found.append(window)
            start = end + 1
        else:
            start += 1
    return found


P = RuleParam
THRESHOLD_GOODS = P("platform_entry_threshold", "进站交易金额起点(货物服务)", "money", "50000", "元", "地方规定")
THRESHOLD_WORKS = P("project_entry_threshold", "进站交易金额起点(工程)", "money", "100000", "元", "地方规定")
