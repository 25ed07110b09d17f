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

import difflib
import hashlib
import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import Integer, func, insert, or_, select
from sqlalchemy.orm import Session

from . import audit, catalogue, directory
from .definitions import parse_param_value
from .errors import Conflict, Forbidden, InvalidData, NotFound
from storage.models import (
    AuditEvent, Case, CaseField, Kinship, Organization, ParameterSetting, SupervisionWarning, TimerDue, User,
    RoleAssignment, WarningSubject, WorkItem,
)

log = logging.getLogger(__name__)

SEVERITIES = {"red": "红", "yellow": "黄", "blue": "蓝"}
SEVERITY_ORDER = {"red": 0, "yellow": 1, "blue": 2}
STATUSES = {"raised": "待处理", "acknowledged": "已签收", "resolved": "已办结", "dismissed": "已排除"}
OPEN_STATUSES = ("raised", "acknowledged")
TRANSITIONS = {"acknowledge": ({"raised"}, "acknowledged", "签收"),
               "resolve": ({"raised", "acknowledged"}, "resolved", "办结"),
               "dismiss": ({"raised", "acknowledged"}, "dismissed", "排除")}
LOCAL = timedelta(hours=8)  # China time: dates and hours people see
# Who handles warnings: the supervisors (village supervision committee, liaison station, township
# discipline office, supervision office). Township administrators may read them.
HANDLER_ROLES = catalogue.SUPERVISOR_ROLES
READER_ROLES = catalogue.SUPERVISOR_ROLES | catalogue.ADMIN_ROLES
KIN_RELATIONS = {"self": ("本人", 0), "spouse": ("配偶", 1), "parent": ("父母", 1), "child": ("子女", 1),
                 "sibling": ("兄弟姐妹", 2), "grandparent": ("祖父母、外祖父母", 2),
                 "grandchild": ("孙子女、外孙子女", 2), "in_law": ("配偶的父母、子女的配偶", 2),
                 "cousin": ("堂表兄弟姐妹", 3), "uncle_aunt": ("伯叔姑舅姨", 3), "nephew_niece": ("侄甥", 3),
                 "partner": ("投资或合伙关系", 1), "other": ("其他利害关系", 3)}


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
        return {"id": self.id, "zh": self.zh, "en": self.en, "inspects": self.inspects,
                "condition": self.condition, "severity": self.severity, "severity_zh": SEVERITIES[self.severity],
                "params": [{"key": p.key, "label": p.label, "type": p.type, "default": str(p.default),
                            "unit": p.unit} for p in self.params],
                "procedures": sorted(self.procedures) if self.procedures else None}


RULES: dict[str, Rule] = {}


def rule(id: str, zh: str, en: str, *, inspects: str, condition: str, severity: str,
         params: tuple[RuleParam, ...] = (), procedures: Iterable[str] | None = None, timed: bool = False):
    def register(fn):
        RULES[id] = Rule(id, zh, en, inspects, condition, severity, params,
                         frozenset(procedures) if procedures is not None else None, fn, timed)
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
        return _date(self.text.get(name))

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

    # organizations
    def orgs(self) -> dict[int, tuple[int | None, str, str, str]]:
        """id → (parent id, code, name, kind)."""
        if self._orgs is None:
            self._orgs = {oid: (parent, code, name, kind) for oid, parent, code, name, kind in self.session.execute(
                select(Organization.id, Organization.parent_id, Organization.code, Organization.name,
                       Organization.kind))}
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
            self._scope_orgs = set(self.session.scalars(select(Case.org_id).where(Case.id.in_(self.case_ids))))
        return self._scope_orgs

    # parameters
    def param(self, org_id: int, key: str) -> Any:
        cached = self._param_cache.get((org_id, key))
        if cached is not None:
            return cached
        if self._settings is None:
            keys = list(declared_params())
            self._settings = {(oid, k): v for oid, k, v in self.session.execute(
                select(ParameterSetting.org_id, ParameterSetting.key, ParameterSetting.value)
                .where(ParameterSetting.key.in_(keys)))}
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
    def fields(self, procedures: Iterable[str], names: Iterable[str], *, by_org: bool = False,
               require: str | None = None) -> dict[int, Row]:
        """Cases of ``procedures`` with the latest values of ``names``: the changed cases, their
        villages' cases (``by_org``), or every case (full scan). ``require``: only cases that have it."""
        procedures, names = list(procedures), list(names)
        query = (select(CaseField.case_id, CaseField.name, CaseField.text_value, CaseField.number_value,
                        CaseField.step_id, Case.org_id, Case.procedure_id, Case.status)
                 .join(Case, Case.id == CaseField.case_id)
                 .where(Case.procedure_id.in_(procedures), CaseField.name.in_(names)))
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
        query = (select(AuditEvent.case_id, AuditEvent.seq, AuditEvent.type, AuditEvent.at, AuditEvent.actor,
                        AuditEvent.role, AuditEvent.data, Case.org_id, Case.procedure_id,
                        Case.procedure_version_id)
                 .join(Case, Case.id == AuditEvent.case_id)
                 .where(AuditEvent.type.in_(list(types))))
        if like:
            query = query.where(AuditEvent.data.like(like))
        if self.case_ids is not None:  # (by case: the case index, never a scan of a procedure's cases)
            query = query.where(AuditEvent.case_id.in_(self.case_ids))
        elif procedures is not None:
            query = query.where(Case.procedure_id.in_(list(procedures)))
        for row in self.session.execute(query.order_by(AuditEvent.case_id, AuditEvent.seq)):
            yield (row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), row[7], row[8], row[9])


def _date(text: Any) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(str(text)[:10])
    except ValueError:
        return None


def _local(at: datetime) -> datetime:
    return at + LOCAL


def _norm(text: str | None) -> str:
    return re.sub(r"\s+", "", str(text or "")).strip().lower()


def _money(value: Decimal | None) -> str:
    return f"{value:,.2f}" if value is not None else "—"


# --- windows: N items of a group within D days ---------------------------------------------
def _windows(items: list[tuple[date, Decimal, int]], days: int, min_count: int, threshold: Decimal,
             *, need_total: bool = True) -> list[list[tuple[date, Decimal, int]]]:
    """Disjoint windows (earliest first) of at least ``min_count`` items, each under ``threshold``,
    spanning at most ``days`` days, together at or over ``threshold`` (when ``need_total``)."""
    items = sorted((i for i in items if i[1] < threshold), key=lambda i: (i[0], i[2]))
    found, start = [], 0
    while start < len(items):
        end = start
        while end + 1 < len(items) and (items[end + 1][0] - items[start][0]).days <= days:
            end += 1
        window = items[start:end + 1]
        if len(window) >= min_count and (not need_total or sum(i[1] for i in window) >= threshold):
            found.append(window)
            start = end + 1
        else:
            start += 1
    return found


P = RuleParam
THRESHOLD_GOODS = P("platform_entry_threshold", "进站交易金额起点(货物服务)", "money", "50000", "元", "地方规定")
THRESHOLD_WORKS = P("project_entry_threshold", "进站交易金额起点(工程)", "money", "100000", "元", "地方规定")


# --- WR-01 split purchases -----------------------------------------------------------------
@rule("WR-01", "拆分采购预警", "Split-purchase detection", severity="red", procedures=["B-PUR-02"],
      inspects="限额以下小额采购(B-PUR-02)的供应商、品目、成交金额、确定日期",
      condition="同一供应商或同一品目在N天内≥M笔,每笔低于进站起点,合计达到进站起点",
      params=(P("split_purchase_days", "拆分采购统计天数", "days", "30", "天"),
              P("split_purchase_count", "拆分采购最少笔数", "integer", "3", "笔"), THRESHOLD_GOODS))
def split_purchases(ctx: ScanContext) -> Iterator[Finding]:
    rows = ctx.fields(["B-PUR-02"], ["supplier", "item_name", "contract_amount", "decision_date"], by_org=True,
                      require="supplier")
    groups: dict[tuple[int, str, str], list] = defaultdict(list)
    for r in rows.values():
        when, amount = r.date("decision_date"), r.amount("contract_amount")
        if when is None or amount is None:
            continue
        groups[(r.org_id, "supplier", _norm(r.text.get("supplier")))].append((when, amount, r.case_id))
        if r.text.get("item_name"):
            groups[(r.org_id, "item", _norm(r.text.get("item_name")))].append((when, amount, r.case_id))
    for (org_id, kind, value), items in groups.items():
        days, count = ctx.param(org_id, "split_purchase_days"), ctx.param(org_id, "split_purchase_count")
        threshold = ctx.param(org_id, "platform_entry_threshold")
        for window in _windows(items, days, count, threshold):
            cases = [i[2] for i in window]
            total = sum(i[1] for i in window)
            label = rows[cases[0]].text.get("supplier" if kind == "supplier" else "item_name")
            yield Finding("WR-01", org_id, f"{org_id}|{kind}|{value}|{cases[0]}",
                          f"{'同一供应商' if kind == 'supplier' else '同一品目'}“{label}”{days}天内{len(cases)}笔采购,"
                          f"每笔低于进站起点{_money(threshold)}元,合计{_money(total)}元",
                          {"by": kind, "value": label, "cases": cases, "amounts": [str(i[1]) for i in window],
                           "dates": [i[0].isoformat() for i in window], "total": str(total),
                           "threshold": str(threshold), "days": days, "min_count": count},
                          case_id=cases[-1])


# --- WR-02 split projects ------------------------------------------------------------------
@rule("WR-02", "拆分工程预警", "Split-project detection", severity="red", procedures=["B-PRJ-02"],
      inspects="限额以下小额工程(B-PRJ-02)的项目名称、承包方、合同金额、开标日期",
      condition="N天内同一承包方或名称相似度≥S的项目≥M个,每个低于进站起点,合计达到进站起点",
      params=(P("split_project_days", "拆分工程统计天数", "days", "90", "天"),
              P("split_project_count", "拆分工程最少个数", "integer", "2", "个"),
              P("split_project_similarity", "项目名称相似度", "ratio", "4/5"), THRESHOLD_WORKS))
def split_projects(ctx: ScanContext) -> Iterator[Finding]:
    rows = ctx.fields(["B-PRJ-02"], ["project_name", "contractor", "contract_amount", "open_date"], by_org=True,
                      require="contractor")
    by_org: dict[int, list[Row]] = defaultdict(list)
    for r in rows.values():
        if r.date("open_date") and r.amount("contract_amount") is not None:
            by_org[r.org_id].append(r)
    for org_id, items in by_org.items():
        days, count = ctx.param(org_id, "split_project_days"), ctx.param(org_id, "split_project_count")
        similarity, threshold = ctx.param(org_id, "split_project_similarity"), ctx.param(org_id, "project_entry_threshold")
        items = sorted((r for r in items if r.amount("contract_amount") < threshold),
                       key=lambda r: (r.date("open_date"), r.case_id))
        used: set[int] = set()
        for i, first in enumerate(items):
            if first.case_id in used:
                continue
            group = [first]
            for other in items[i + 1:]:
                if (other.date("open_date") - first.date("open_date")).days > days:
                    break
                if other.case_id in used:
                    continue
                same = _norm(other.text.get("contractor")) == _norm(first.text.get("contractor"))
                ratio = difflib.SequenceMatcher(None, _norm(first.text.get("project_name")),
                                                _norm(other.text.get("project_name"))).ratio()
                if same or ratio >= similarity:
                    group.append(other)
            total = sum(r.amount("contract_amount") for r in group)
            if len(group) >= count and total >= threshold:
                used.update(r.case_id for r in group)
                cases = [r.case_id for r in group]
                yield Finding("WR-02", org_id, f"{org_id}|{cases[0]}",
                              f"{days}天内{len(group)}个相似或同一承包方的工程,每个低于进站起点{_money(threshold)}元,"
                              f"合计{_money(total)}元",
                              {"cases": cases, "projects": [r.text.get("project_name") for r in group],
                               "contractors": [r.text.get("contractor") for r in group],
                               "amounts": [str(r.amount("contract_amount")) for r in group],
                               "dates": [r.date("open_date").isoformat() for r in group], "total": str(total),
                               "threshold": str(threshold)},
                              case_id=cases[-1])


# --- WR-03 above the threshold without the platform ----------------------------------------
PLATFORM_PROCEDURES = {"B-PUR-01": "supplier", "B-PRJ-01": "winner", "B-PUR-04": "agency"}


@rule("WR-03", "超限额未进站", "Above-threshold without platform transaction", severity="red",
      procedures=["B-FIN-01", *PLATFORM_PROCEDURES],
      inspects="财务支出报销(B-FIN-01)的金额、类别、收款方;进站采购和工程(B-PUR-01、B-PRJ-01、B-PUR-04)的中标方",
      condition="采购、工程或服务类单笔支出达到进站起点,而收款方在本村没有进站交易记录",
      params=(THRESHOLD_GOODS,))
def above_threshold(ctx: ScanContext) -> Iterator[Finding]:
    rows = ctx.fields(["B-FIN-01"], ["amount", "payee", "expense_category"], require="payee")
    platform = ctx.fields(list(PLATFORM_PROCEDURES), list(set(PLATFORM_PROCEDURES.values())), by_org=True)
    entered = {(r.org_id, _norm(r.text.get(name))) for r in platform.values()
               for name in PLATFORM_PROCEDURES.values() if r.text.get(name)}
    if ctx.case_ids is not None and not rows:  # a platform case changed: look at the village's payments
        rows = ctx.fields(["B-FIN-01"], ["amount", "payee", "expense_category"], by_org=True, require="payee")
    for r in rows.values():
        amount, threshold = r.amount("amount"), ctx.param(r.org_id, "platform_entry_threshold")
        if amount is None or amount < threshold or r.text.get("expense_category") not in ("project", "service", "office", "other"):
            continue
        if (r.org_id, _norm(r.text.get("payee"))) in entered:
            continue
        yield Finding("WR-03", r.org_id, f"{r.case_id}",
                      f"支出{_money(amount)}元(达到进站起点{_money(threshold)}元)付给“{r.text.get('payee')}”,无进站交易记录",
                      {"amount": str(amount), "threshold": str(threshold), "payee": r.text.get("payee"),
                       "category": r.text.get("expense_category")}, case_id=r.case_id)


# --- WR-04 execution before decision; XW-03 payment before acceptance -----------------------
# (procedure, field that must come first, the step that gives it, field that must not be earlier)
BEFORE_DECISION = [("V-DEC-01", "meeting_date", "resolve", "completion_date", "实施完成日期早于村民代表会议决议日期"),
                   ("C-DEC-01", "meeting_date", "resolve", "completion_date", "实施完成日期早于居民代表会议决议日期"),
                   ("B-PUR-02", "decision_date", "decide_supplier", "paid_date", "报账付款早于联席会议确定供应商"),
                   ("V-PRJ-01", "meeting_date", "major_decision", "register_date", "平台登记早于村民代表会议决议")]
BEFORE_ACCEPTANCE = [("B-PUR-03", "acceptance_date", "acceptance", "paid_date", "报账付款早于验收"),
                     ("B-PRJ-05", "acceptance_date", "acceptance", "final_pay_date", "支付工程尾款早于竣工验收")]


def _order_findings(ctx: ScanContext, rule_id: str, pairs) -> Iterator[Finding]:
    for proc, first, first_step, later, message in pairs:
        rows = ctx.fields([proc], [first, later])
        for r in rows.values():
            a, b = r.date(first), r.date(later)
            if a is None or b is None or r.step.get(first) != first_step or b >= a:
                continue
            yield Finding(rule_id, r.org_id, f"{r.case_id}|{later}",
                          f"{message}({later} {b.isoformat()} 早于 {first} {a.isoformat()})",
                          {"procedure": proc, "first_field": first, "first": a.isoformat(), "later_field": later,
                           "later": b.isoformat(), "days_early": (a - b).days}, case_id=r.case_id)


@rule("WR-04", "先实施后决策", "Execution before decision", severity="red",
      procedures=[p[0] for p in BEFORE_DECISION],
      inspects="决议(确定)日期与实施完成、付款、平台登记日期",
      condition="实施、付款或登记日期早于决议或确定供应商的日期")
def execution_before_decision(ctx: ScanContext) -> Iterator[Finding]:
    return _order_findings(ctx, "WR-04", BEFORE_DECISION)


@rule("XW-03", "先付款后验收", "Payment before acceptance", severity="red",
      procedures=[p[0] for p in BEFORE_ACCEPTANCE],
      inspects="验收日期与报账、尾款支付日期(B-PUR-03、B-PRJ-05)",
      condition="付款日期早于验收日期")
def payment_before_acceptance(ctx: ScanContext) -> Iterator[Finding]:
    return _order_findings(ctx, "XW-03", BEFORE_ACCEPTANCE)


# --- WR-05 disclosure too short or removed early --------------------------------------------
@rule("WR-05", "公示期不足", "Disclosure period too short", severity="yellow",
      inspects="公示步骤的公示开始日期、公示期计时、村务公开撤下日期",
      condition="实际公示天数(公示开始日至公示期满)少于规定天数,或村务公开在规定天数内撤下",
      params=(P("affairs_disclosure_days", "村务公开最短天数", "days", "15", "天"),))
def disclosure_short(ctx: ScanContext) -> Iterator[Finding]:
    for case_id, seq, _t, at, actor, _role, data, org_id, proc, _v in ctx.events(
            ["step_completed"], like='%"notice_start"%'):
        start = _date((data.get("data") or {}).get("notice_start"))
        step = data.get("step")
        if start is None:
            continue
        for timer in data.get("timers") or []:
            if timer.get("node") != f"{step}_period" or not timer.get("due_at"):
                continue
            due = (datetime.strptime(timer["due_at"], "%Y-%m-%dT%H:%M:%S.%fZ") + LOCAL).date()
            required = (due - _local(at).date()).days
            actual = (due - start).days
            if actual < required:
                yield Finding("WR-05", org_id, f"{case_id}|{step}|{seq}",
                              f"“{data.get('name')}”公示开始日期{start.isoformat()}晚于登记日,实际公示{actual}天,少于规定{required}天",
                              {"step": step, "step_name": data.get("name"), "notice_start": start.isoformat(),
                               "recorded": _local(at).date().isoformat(), "period_end": due.isoformat(),
                               "actual_days": actual, "required_days": required, "seq": seq},
                              case_id=case_id, subjects=(actor,))
    for r in ctx.fields(["V-PUB-01", "C-PUB-01"], ["notice_start", "withdraw_date"]).values():
        start, end = r.date("notice_start"), r.date("withdraw_date")
        if start is None or end is None:
            continue
        required = ctx.param(r.org_id, "affairs_disclosure_days")
        if (end - start).days < required:
            yield Finding("WR-05", r.org_id, f"{r.case_id}|withdrawn",
                          f"村(居)务公开{start.isoformat()}张贴、{end.isoformat()}撤下,仅{(end - start).days}天,少于{required}天",
                          {"notice_start": start.isoformat(), "withdraw_date": end.isoformat(),
                           "actual_days": (end - start).days, "required_days": required}, case_id=r.case_id)


# --- WR-07 quorum or majority short of the statutory rule ----------------------------------
@rule("WR-07", "会议法定人数或表决比例不足", "Quorum or majority not met", severity="red",
      inspects="表决步骤的应到、实到、赞成人数与表决结论",
      condition="按法定(事项库默认)比例不足法定人数或未过半,但因本地参数调低而按“通过”继续办理")
def quorum_not_met(ctx: ScanContext) -> Iterator[Finding]:
    from .expressions import ExpressionError, compile_expression
    from .procedures import runtime

    for case_id, seq, _t, _at, _actor, _role, data, org_id, proc, version_id in ctx.events(
            ["gateway_decided"], like='%"members_total"%'):
        if data.get("condition") != "default":
            continue
        d = runtime(ctx.session, version_id).definition
        node = d.nodes.get(data.get("gateway") or "")
        if node is None:
            continue
        defaults = {k: p.default for k, p in d.parameters.items()}
        inputs = data.get("inputs") or {}
        for fid in node.outgoing:
            flow = d.flows[fid]
            if not flow.condition:
                continue
            try:
                held = bool(compile_expression(flow.condition).evaluate(inputs, defaults))
            except (ExpressionError, TypeError, ValueError):
                continue
            if held:
                yield Finding("WR-07", org_id, f"{case_id}|{seq}",
                              f"{data.get('name') or '表决'}:按法定比例应为“{flow.name or flow.condition}”,却按通过继续办理",
                              {"gateway": node.id, "should_take": flow.name, "condition": flow.condition,
                               "inputs": inputs, "statutory_params": {k: str(v) for k, v in defaults.items()
                                                                        if k in flow.condition}, "seq": seq},
                              case_id=case_id)
                break


# --- WR-08 / WR-09 / WR-22 kinship conflicts -----------------------------------------------
PARTY_FIELDS = ("supplier", "contractor", "winner", "payee", "transferee", "buyer", "agency", "provider", "company",
                "contractor_person", "contractor_org", "counterparty", "recycler", "user_org")
WELFARE_FIELDS = {"B-SVC-01": ("applicant_name", "recipient_name"), "B-SVC-02": ("applicant_name",),
                  "C-SVC-01": ("applicant_name",), "V-AST-05": ("applicant_name",)}
HIRING_FIELDS = {"V-HR-01": ("candidate_name",), "C-HR-01": ("applicant_name",)}
KIN_DEGREE = P("kin_max_degree", "近亲属关系最远等级(1配偶父母子女,2兄弟姐妹祖孙)", "integer", "2", "级")


def _kin(ctx: ScanContext) -> dict[str, list]:
    rows = ctx.session.execute(select(Kinship.org_id, Kinship.cadre, Kinship.cadre_name, Kinship.person_name,
                                      Kinship.relation, Kinship.degree)).all()
    by_name: dict[str, list] = defaultdict(list)
    for row in rows:
        by_name[_norm(row.person_name)].append(row)
    return by_name


def _kin_matches(ctx: ScanContext, by_name, org_id: int, name: str):
    chain = set(ctx.chain(org_id))
    for k in by_name.get(_norm(name), []):
        if k.org_id in chain and k.degree <= ctx.param(org_id, "kin_max_degree"):
            yield k


def _kin_findings(ctx: ScanContext, rule_id: str, procs: dict[str, tuple[str, ...]] | None, fields: Iterable[str],
                  what: str, exempt: Callable[[Row, Any], bool] | None = None) -> Iterator[Finding]:
    by_name = _kin(ctx)
    if not by_name:
        return
    fields = list(fields)
    query = (select(CaseField.case_id, CaseField.name, CaseField.text_value, Case.org_id, Case.procedure_id)
             .join(Case, Case.id == CaseField.case_id)
             .where(CaseField.type.in_(("text", "person")), CaseField.name.in_(fields)))
    if procs is not None:
        query = query.where(Case.procedure_id.in_(list(procs)))
    if ctx.case_ids is not None:
        query = query.where(CaseField.case_id.in_(ctx.case_ids))
    names = sorted({row.person_name for rows in by_name.values() for row in rows})
    hits = []
    for i in range(0, len(names), 500):
        hits.extend(ctx.session.execute(query.where(CaseField.text_value.in_(names[i:i + 500]))).all())
    extra = ctx.fields(list(procs), ["cadre_kin", "recused_members"]) if procs and hits else {}
    for case_id, name, value, org_id, proc in hits:
        if procs is not None and name not in procs.get(proc, ()):
            continue
        for k in _kin_matches(ctx, by_name, org_id, value):
            if exempt and exempt(extra.get(case_id) or Row(case_id, org_id, proc, ""), k):
                continue
            relation = KIN_RELATIONS.get(k.relation, (k.relation,))[0]
            yield Finding(rule_id, org_id, f"{case_id}|{name}|{_norm(value)}|{k.cadre}",
                          f"{what}“{value}”是干部{k.cadre_name or k.cadre}的{relation}",
                          {"field": name, "person": value, "cadre": k.cadre, "cadre_name": k.cadre_name,
                           "relation": k.relation, "relation_zh": relation, "degree": k.degree},
                          case_id=case_id, subjects=(k.cadre,))


@rule("WR-08", "关联交易(亲属)预警", "Related-party transaction (kinship)", severity="red",
      inspects="供应商、承包方、中标人、收款方等 vs 干部近亲属库",
      condition="交易对方或收款人是本村(或上级)干部本人或其申报的近亲属、投资合伙关系人",
      params=(KIN_DEGREE,))
def related_party(ctx: ScanContext) -> Iterator[Finding]:
    return _kin_findings(ctx, "WR-08", None, PARTY_FIELDS, "交易对方或收款人")


@rule("WR-09", "优亲厚友(救助对象为干部亲属)", "Welfare beneficiary related to cadres", severity="red",
      procedures=list(WELFARE_FIELDS),
      inspects="低保、临时救助、公租房、成员身份确认的申请人 vs 干部近亲属库、亲属备案",
      condition="对象为干部近亲属,且办理中没有如实登记“干部近亲属”(备案)",
      params=(KIN_DEGREE,))
def welfare_kin(ctx: ScanContext) -> Iterator[Finding]:
    return _kin_findings(ctx, "WR-09", WELFARE_FIELDS, {f for v in WELFARE_FIELDS.values() for f in v},
                         "救助(保障)对象", exempt=_kin_filed)


def _kin_filed(row: Row, k) -> bool:
    """B-SVC-02 records whether the applicant is a cadre's relative (备案) at its verify step: judge
    after it, and not when it was declared."""
    if row.procedure_id != "B-SVC-02":
        return False
    return row.text.get("cadre_kin") in (None, "true")


@rule("WR-22", "亲属任用预警", "Hiring of cadres' relatives", severity="red", procedures=list(HIRING_FIELDS),
      inspects="拟聘人员 vs 两委成员近亲属库、回避登记",
      condition="拟聘人员为干部近亲属,且回避登记中没有该干部",
      params=(KIN_DEGREE,))
def hiring_kin(ctx: ScanContext) -> Iterator[Finding]:
    def recused(row: Row, k) -> bool:
        text = row.text.get("recused_members") or ""
        return bool(k.cadre_name and k.cadre_name in text) or k.cadre in text

    return _kin_findings(ctx, "WR-22", HIRING_FIELDS, {f for v in HIRING_FIELDS.values() for f in v},
                         "拟聘人员", exempt=recused)


# --- WR-11 / WR-12 / WR-23 / WR-24 payments --------------------------------------------------
EXEMPT_PAYEE = {"个人", "-", "—", "无"}
EXEMPT_CATEGORIES = {"subsidy", "welfare"}


@rule("WR-11", "同一收款人高频收款", "High-frequency payee", severity="yellow", procedures=["B-FIN-01"],
      inspects="财务支出报销(B-FIN-01)的收款方、金额、支出日期",
      condition="同一收款方N天内≥M笔,或≥2笔且合计≥配置金额(误工补贴、福利类除外)",
      params=(P("payee_days", "高频收款统计天数", "days", "30", "天"),
              P("payee_count", "高频收款笔数", "integer", "5", "笔"),
              P("payee_total", "高频收款累计金额", "money", "50000", "元")))
def frequent_payee(ctx: ScanContext) -> Iterator[Finding]:
    rows = ctx.fields(["B-FIN-01"], ["payee", "amount", "expense_date", "expense_category"], by_org=True,
                      require="payee")
    groups: dict[tuple[int, str], list] = defaultdict(list)
    for r in rows.values():
        when, amount = r.date("expense_date"), r.amount("amount")
        payee = r.text.get("payee", "").strip()
        if when is None or amount is None or payee in EXEMPT_PAYEE or r.text.get("expense_category") in EXEMPT_CATEGORIES:
            continue
        groups[(r.org_id, _norm(payee))].append((when, amount, r.case_id))
    for (org_id, payee), items in groups.items():
        days, count, total_limit = (ctx.param(org_id, "payee_days"), ctx.param(org_id, "payee_count"),
                                    ctx.param(org_id, "payee_total"))
        items.sort(key=lambda i: (i[0], i[2]))
        start = 0
        while start < len(items):
            end = start
            while end + 1 < len(items) and (items[end + 1][0] - items[start][0]).days <= days:
                end += 1
            window = items[start:end + 1]
            total = sum(i[1] for i in window)
            if len(window) >= count or (len(window) >= 2 and total >= total_limit):
                cases = [i[2] for i in window]
                yield Finding("WR-11", org_id, f"{org_id}|{payee}|{cases[0]}",
                              f"收款方“{rows[cases[0]].text.get('payee')}”{days}天内收款{len(window)}笔,合计{_money(total)}元",
                              {"payee": rows[cases[0]].text.get("payee"), "cases": cases, "total": str(total),
                               "amounts": [str(i[1]) for i in window], "dates": [i[0].isoformat() for i in window],
                               "days": days, "count_limit": count, "total_limit": str(total_limit)},
                              case_id=cases[-1])
                start = end + 1
            else:
                start += 1


@rule("WR-12", "现金收支超限", "Cash limit breach", severity="yellow", procedures=["B-FIN-01", "B-FIN-02"],
      inspects="报销支付方式与金额(B-FIN-01);收入存行天数(B-FIN-02)",
      condition="单笔现金支付超过限额,或现金收入超过规定天数未存行",
      params=(P("cash_single_limit", "单笔现金支付限额", "money", "1000", "元"),
              P("cash_deposit_days", "现金收入存行时限", "days", "3", "天")))
def cash_limit(ctx: ScanContext) -> Iterator[Finding]:
    for r in ctx.fields(["B-FIN-01"], ["payment_method", "amount"]).values():
        limit, amount = ctx.param(r.org_id, "cash_single_limit"), r.amount("amount")
        if r.text.get("payment_method") == "cash" and amount is not None and amount > limit:
            yield Finding("WR-12", r.org_id, f"{r.case_id}|cash", f"现金支付{_money(amount)}元,超过单笔限额{_money(limit)}元",
                          {"amount": str(amount), "limit": str(limit)}, case_id=r.case_id)
    for r in ctx.fields(["B-FIN-02"], ["days_to_deposit", "receivable", "amount"]).values():
        days, limit = r.amount("days_to_deposit"), ctx.param(r.org_id, "cash_deposit_days")
        if days is not None and days > limit:
            yield Finding("WR-12", r.org_id, f"{r.case_id}|deposit", f"现金收入{int(days)}天后才存行,超过{limit}天",
                          {"days_to_deposit": int(days), "limit": limit}, case_id=r.case_id)


_ORG_NAME = re.compile(r"(公司|有限|合作社|厂|店|中心|站|院|局|所|队|部|行|会|社|室|馆|场|处|委|办|集团|工作室)")


@rule("WR-23", "大额资金流向个人", "Large transfer to individual account", severity="red", procedures=["B-FIN-01"],
      inspects="财务支出报销的收款方、金额、类别;干部名单",
      condition="向个人单笔≥配置金额(补贴、福利类除外);或收款人为本村干部本人",
      params=(P("large_transfer_amount", "向个人大额支付起点", "money", "50000", "元"),))
def large_to_individual(ctx: ScanContext) -> Iterator[Finding]:
    rows = ctx.fields(["B-FIN-01"], ["payee", "amount", "expense_category"], require="payee")
    if not rows:
        return
    cadres: dict[int, dict[str, str]] = defaultdict(dict)  # org → display name → username
    for oid, username, display in ctx.session.execute(
            select(RoleAssignment.org_id, User.username, User.display_name).join(User, User.id == RoleAssignment.user_id)
            .where(RoleAssignment.org_id.in_({o for r in rows.values() for o in ctx.chain(r.org_id)}))):
        if display:
            cadres[oid][_norm(display)] = username
    for r in rows.values():
        payee, amount = r.text.get("payee", "").strip(), r.amount("amount")
        limit = ctx.param(r.org_id, "large_transfer_amount")
        cadre = next((cadres[o][_norm(payee)] for o in ctx.chain(r.org_id) if _norm(payee) in cadres.get(o, {})), None)
        if cadre:
            yield Finding("WR-23", r.org_id, f"{r.case_id}|cadre", f"收款人“{payee}”是本村干部本人({cadre})",
                          {"payee": payee, "cadre": cadre, "amount": str(amount)}, case_id=r.case_id, subjects=(cadre,))
        elif (amount is not None and amount >= limit and r.text.get("expense_category") not in EXEMPT_CATEGORIES
              and (payee == "个人" or not _ORG_NAME.search(payee))):
            yield Finding("WR-23", r.org_id, f"{r.case_id}|individual",
                          f"向个人“{payee}”单笔支付{_money(amount)}元,达到{_money(limit)}元",
                          {"payee": payee, "amount": str(amount), "limit": str(limit)}, case_id=r.case_id)


@rule("WR-24", "年末突击支出", "Year-end spending spike", severity="blue", procedures=["B-FIN-01"],
      inspects="财务支出报销按月合计(支出发生日期)",
      condition="12月支出超过1–11月月均支出的N倍(1–11月至少3个月有支出)",
      params=(P("year_end_factor", "年末突击支出倍数", "integer", "3", "倍"),))
def year_end_spike(ctx: ScanContext) -> Iterator[Finding]:
    rows = ctx.fields(["B-FIN-01"], ["amount", "expense_date"], by_org=True)
    months: dict[tuple[int, int], dict[int, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for r in rows.values():
        when, amount = r.date("expense_date"), r.amount("amount")
        if when and amount is not None:
            months[(r.org_id, when.year)][when.month] += amount
    for (org_id, year), by_month in months.items():
        december = by_month.get(12, Decimal(0))
        earlier = [by_month[m] for m in range(1, 12) if by_month.get(m)]
        if december <= 0 or len(earlier) < 3:
            continue
        average = sum(earlier, Decimal(0)) / 11
        factor = ctx.param(org_id, "year_end_factor")
        if december > average * factor:
            yield Finding("WR-24", org_id, f"{org_id}|{year}",
                          f"{year}年12月支出{_money(december)}元,是1–11月月均{_money(average)}元的{december / average:.1f}倍",
                          {"year": year, "december": str(december), "monthly_average": str(average.quantize(Decimal('0.01'))),
                           "factor": factor, "months": {m: str(v) for m, v in sorted(by_month.items())}})


# --- WR-15 / WR-16 / WR-17 leases and settlements ------------------------------------------
@rule("WR-15", "资产低价出租", "Below-previous-rent lease", severity="yellow", procedures=["V-AST-01"],
      inspects="集体资产出租(V-AST-01)的上期年租金与成交年租金",
      condition="成交年租金较上期下降达到配置比例(成交价低于底价由表单校验拦截)",
      params=(P("lease_drop_ratio", "租金较上期下降预警比例", "ratio", "1/5"),))
def lease_drop(ctx: ScanContext) -> Iterator[Finding]:
    for r in ctx.fields(["V-AST-01"], ["previous_rent", "deal_price"]).values():
        before, deal = r.amount("previous_rent"), r.amount("deal_price")
        if not before or deal is None or r.step.get("deal_price") != "bidding":
            continue
        ratio = ctx.param(r.org_id, "lease_drop_ratio")
        if deal <= before * (1 - ratio):
            yield Finding("WR-15", r.org_id, f"{r.case_id}",
                          f"成交年租金{_money(deal)}元较上期{_money(before)}元下降{(before - deal) / before:.0%}",
                          {"previous_rent": str(before), "deal_price": str(deal), "ratio": str(ratio)},
                          case_id=r.case_id)


@rule("WR-16", "租金逾期", "Rent arrears", severity="yellow", procedures=["V-AST-01"],
      inspects="集体资产出租(V-AST-01)租金收取的逾期天数、实收租金、合同年租金",
      condition="租金逾期天数达到配置天数(收入低于预期)",
      params=(P("rent_overdue_days", "租金逾期预警天数", "days", "30", "天"),))
def rent_arrears(ctx: ScanContext) -> Iterator[Finding]:
    for r in ctx.fields(["V-AST-01"], ["overdue_days", "rent_received", "annual_rent", "receipt_date"]).values():
        days = r.amount("overdue_days")
        limit = ctx.param(r.org_id, "rent_overdue_days")
        if days is None or days < limit:
            continue
        yield Finding("WR-16", r.org_id, f"{r.case_id}|{r.text.get('receipt_date')}",
                      f"租金逾期{int(days)}天(预警线{limit}天),实收{_money(r.amount('rent_received'))}元,"
                      f"合同年租金{_money(r.amount('annual_rent'))}元",
                      {"overdue_days": int(days), "limit": limit, "rent_received": str(r.amount("rent_received")),
                       "annual_rent": str(r.amount("annual_rent"))}, case_id=r.case_id)


@rule("WR-17", "工程结算超比例", "Settlement overrun", severity="red", procedures=["B-PRJ-05"],
      inspects="工程竣工结算(B-PRJ-05)的合同价与审定结算价",
      condition="审定结算价超过合同价达到配置比例",
      params=(P("settlement_overrun_ratio", "结算超合同价预警比例", "ratio", "1/10"),))
def settlement_overrun(ctx: ScanContext) -> Iterator[Finding]:
    for r in ctx.fields(["B-PRJ-05"], ["contract_amount", "audited_price"]).values():
        contract, audited = r.amount("contract_amount"), r.amount("audited_price")
        if not contract or audited is None:
            continue
        ratio = ctx.param(r.org_id, "settlement_overrun_ratio")
        if audited >= contract * (1 + ratio):
            yield Finding("WR-17", r.org_id, f"{r.case_id}",
                          f"审定结算价{_money(audited)}元超过合同价{_money(contract)}元{(audited - contract) / contract:.0%}",
                          {"contract_amount": str(contract), "audited_price": str(audited), "ratio": str(ratio)},
                          case_id=r.case_id)


# --- WR-19 seal use ---------------------------------------------------------------------------
@rule("WR-19", "用印异常", "Seal-use anomaly", severity="yellow", procedures=["B-PUB-01", "B-SVC-03"],
      inspects="用印时间(B-PUB-01、B-SVC-03)",
      condition="非工作日或工作时间以外用印;某日用印次数超过近90天日均的N倍且不少于M次",
      params=(P("work_hours_start", "工作时间开始(时)", "integer", "8", "时"),
              P("work_hours_end", "工作时间结束(时)", "integer", "18", "时"),
              P("seal_bulk_factor", "单日用印超均值倍数", "integer", "3", "倍"),
              P("seal_bulk_min", "单日用印预警最少次数", "integer", "5", "次")))
def seal_anomaly(ctx: ScanContext) -> Iterator[Finding]:
    from .workdays import is_working_day

    rows = ctx.fields(["B-PUB-01", "B-SVC-03"], ["seal_time"], by_org=True, require="seal_time")
    by_day: dict[int, dict[date, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r in rows.values():
        try:
            when = datetime.fromisoformat(r.text["seal_time"][:19])
        except ValueError:
            continue
        by_day[r.org_id][when.date()].append(r.case_id)
        if ctx.case_ids is not None and r.case_id not in ctx.case_ids:
            continue
        start, end = ctx.param(r.org_id, "work_hours_start"), ctx.param(r.org_id, "work_hours_end")
        if not is_working_day(when.date()) or not start <= when.hour < end:
            yield Finding("WR-19", r.org_id, f"{r.case_id}|hours",
                          f"{when:%Y-%m-%d %H:%M} 用印,不在工作日{start}:00–{end}:00内",
                          {"seal_time": r.text["seal_time"], "working_day": is_working_day(when.date())},
                          case_id=r.case_id)
    for org_id, days in by_day.items():
        factor, least = ctx.param(org_id, "seal_bulk_factor"), ctx.param(org_id, "seal_bulk_min")
        for day, cases in days.items():
            if len(cases) < least:
                continue
            recent = [len(v) for d, v in days.items() if d != day and 0 < (day - d).days <= 90]
            average = sum(recent) / len(recent) if recent else 1
            if len(cases) > average * factor:
                yield Finding("WR-19", org_id, f"{org_id}|{day.isoformat()}",
                              f"{day.isoformat()} 用印{len(cases)}次,超过近90天日均{average:.1f}次的{factor}倍",
                              {"day": day.isoformat(), "count": len(cases), "average": round(average, 2),
                               "cases": sorted(cases)}, case_id=max(cases))


# --- WR-20 steps overdue; XW-01 stalled cases ------------------------------------------------
@rule("WR-20", "环节办理超时", "Step overdue", severity="blue", timed=True,
      inspects="待办环节的办理时限(work_item.due_at)与完成时间",
      condition="环节已过办理时限仍未办理,或办理完成时已超过时限")
def step_overdue(ctx: ScanContext) -> Iterator[Finding]:
    query = (select(WorkItem.case_id, WorkItem.task_id, WorkItem.step_id, WorkItem.step_name, WorkItem.role_key,
                    WorkItem.due_at, WorkItem.org_id)
             .where(WorkItem.due_at.is_not(None), WorkItem.due_at < ctx.now))
    if ctx.case_ids is not None:
        query = query.where(WorkItem.case_id.in_(ctx.case_ids))
    for case_id, task_id, step_id, name, role, due, org_id in ctx.session.execute(query):
        yield Finding("WR-20", org_id, f"{case_id}|{task_id}",
                      f"“{name}”已超过办理时限({_local(due):%Y-%m-%d %H:%M})",
                      {"step": step_id, "step_name": name, "role": role, "due_at": audit.iso(due), "open": True},
                      case_id=case_id)
    if ctx.case_ids is None:
        return  # completed late: judged when the step is completed (the incremental evaluation)
    for c in late_steps(ctx.session, ctx.case_ids, latest_only=True):
        if c["late"]:
            yield Finding("WR-20", c["org_id"], f"{c['case_id']}|{c['task_id']}",
                          f"“{c['name']}”超过办理时限完成(时限{c['due_at'][:16]})",
                          {"step": c["step"], "step_name": c["name"], "due_at": c["due_at"],
                           "completed_at": c["completed_at"], "actor": c["actor"], "open": False},
                          case_id=c["case_id"], subjects=(c["actor"],))


def late_steps(session: Session, case_ids: Iterable[int] | None = None, *, actor: str | None = None,
               latest_only: bool = False) -> list[dict]:
    """Completed steps with their time limit from the audit trail: whether each was completed late."""
    query = (select(AuditEvent.case_id, AuditEvent.seq, AuditEvent.type, AuditEvent.at, AuditEvent.actor,
                    AuditEvent.data, Case.org_id)
             .join(Case, Case.id == AuditEvent.case_id)
             .where(AuditEvent.type.in_(("case_started", "step_completed", "steps_opened", "timer_fired",
                                         "gateway_decided"))))
    if case_ids is not None:
        query = query.where(AuditEvent.case_id.in_(list(case_ids)))
    if actor is not None:
        query = query.where(AuditEvent.case_id.in_(select(AuditEvent.case_id).where(AuditEvent.actor == actor)))
    out: list[dict] = []
    due: dict[tuple[int, str], str | None] = {}
    last_by_case: dict[int, dict] = {}
    for case_id, seq, type_, at, who, data, org_id in session.execute(query.order_by(AuditEvent.case_id, AuditEvent.seq)):
        parsed = json.loads(data)
        if type_ == "step_completed":
            step = parsed.get("step")
            limit = due.get((case_id, step))
            item = {"case_id": case_id, "task_id": parsed.get("task_id"), "step": step, "name": parsed.get("name"),
                    "actor": who, "org_id": org_id, "completed_at": audit.iso(at), "due_at": limit,
                    "late": bool(limit and audit.iso(at) > limit)}
            if actor is None or who == actor:
                out.append(item)
            last_by_case[case_id] = item
        for opened in parsed.get("opened") or []:
            due[(case_id, opened.get("step"))] = opened.get("due_at")
    if latest_only:
        return [v for v in last_by_case.values()]
    return out


@rule("XW-01", "事项停滞", "Case stalled", severity="yellow", timed=True,
      inspects="办理中事项的最后变动时间、等待中的计时器",
      condition="事项办理中,N天没有任何进展,且没有在等待公示期等计时器",
      params=(P("stall_days", "事项停滞预警天数", "days", "30", "天"),))
def case_stalled(ctx: ScanContext) -> Iterator[Finding]:
    waiting = select(TimerDue.case_id).where(TimerDue.due_at > ctx.now)
    query = (select(Case.id, Case.org_id, Case.updated_at, Case.title)
             .where(Case.status == "running", Case.updated_at < ctx.now - timedelta(days=1), Case.id.not_in(waiting)))
    if ctx.case_ids is not None:
        query = query.where(Case.id.in_(ctx.case_ids))
    for case_id, org_id, updated, title in ctx.session.execute(query):
        days = ctx.param(org_id, "stall_days")
        idle = (ctx.now - updated).days
        if idle >= days:
            yield Finding("XW-01", org_id, f"{case_id}|{audit.iso(updated)}",
                          f"“{title}”已{idle}天没有进展(自{_local(updated):%Y-%m-%d})",
                          {"last_change": audit.iso(updated), "idle_days": idle, "limit": days}, case_id=case_id)


# --- WR-21 quarterly financial disclosure -----------------------------------------------------
@rule("WR-21", "财务公开逾期", "Financial disclosure overdue", severity="yellow", timed=True,
      procedures=["V-PUB-01", "C-PUB-01"],
      inspects="村(居)务公开(V-PUB-01、C-PUB-01)的公示开始日期,按季度",
      condition="季度结束后N天内没有发布村(居)务(财务)公开",
      params=(P("finance_disclosure_grace_days", "季度财务公开期限(季度结束后)", "days", "15", "天"),))
def finance_disclosure_overdue(ctx: ScanContext) -> Iterator[Finding]:
    if ctx.case_ids is not None:
        return  # judged by the passing of time: tick and scan
    created = dict(ctx.session.execute(select(Organization.id, Organization.created_at)
                                       .where(Organization.kind.in_(("village", "community")))).all())
    published: dict[int, list[date]] = defaultdict(list)
    for r in ctx.fields(["V-PUB-01", "C-PUB-01"], ["notice_start"]).values():
        if r.date("notice_start"):
            published[r.org_id].append(r.date("notice_start"))
    for org_id, since in created.items():
        grace = ctx.param(org_id, "finance_disclosure_grace_days")
        since_day = (since + LOCAL).date()
        year, quarter = ctx.today.year, (ctx.today.month - 1) // 3  # quarter index of today (0..3)
        for back in range(1, 5):
            q = quarter - back
            y = year + (q // 4)
            q %= 4
            end = date(y + (1 if q == 3 else 0), 1 if q == 3 else q * 3 + 4, 1) - timedelta(days=1)
            if end < since_day or end + timedelta(days=grace) >= ctx.today:
                continue
            if any(end - timedelta(days=15) < d <= end + timedelta(days=grace) for d in published.get(org_id, [])):
                continue
            yield Finding("WR-21", org_id, f"{org_id}|{y}Q{q + 1}",
                          f"{y}年第{q + 1}季度财务公开在季度结束后{grace}天内未发布",
                          {"year": y, "quarter": q + 1, "quarter_end": end.isoformat(),
                           "deadline": (end + timedelta(days=grace)).isoformat()})


# --- XW-02 separation of duties -----------------------------------------------------------------
SOD_PAIRS = {
    frozenset({"applicant", "committee"}): "申请人与审核人", frozenset({"applicant", "civil_affairs"}): "申请人与审核人",
    frozenset({"applicant", "director"}): "申请人与审批人", frozenset({"applicant", "assessment_panel"}): "申请人与评议人",
    frozenset({"handler", "director"}): "经办人与审批人", frozenset({"handler", "joint_meeting"}): "经办人与审批人",
    frozenset({"handler", "seal_keeper"}): "用印申请人与印章保管人", frozenset({"director", "seal_keeper"}): "用印审批人与印章保管人",
    frozenset({"handler", "bookkeeper"}): "经办人与报账员", frozenset({"handler", "acceptance_team"}): "采购人与验收人",
    frozenset({"committee", "acceptance_team"}): "提出人与验收人", frozenset({"committee", "supervision_committee"}): "执行人与监督人",
    frozenset({"handler", "supervision_committee"}): "经办人与监督人", frozenset({"bookkeeper", "supervision_committee"}): "报账员与监督人",
    frozenset({"director", "supervision_committee"}): "审批人与监督人", frozenset({"party_branch", "supervision_committee"}): "提议人与监督人",
}
SOD_ROLES = sorted({r for pair in SOD_PAIRS for r in pair})


@rule("XW-02", "不相容职务由一人担任", "Separation of duties", severity="red",
      inspects="同一事项中各环节的办理人和所用角色;采购与验收的办理人(B-PUR-01/B-PUR-03 按采购单号)",
      condition="同一人在同一事项中以流程分开的两个角色办理(申请与审核、经办与审批、用印与保管、采购与验收、执行与监督)")
def separation_of_duties(ctx: ScanContext) -> Iterator[Finding]:
    query = (select(AuditEvent.case_id, AuditEvent.actor, AuditEvent.role, Case.org_id)
             .join(Case, Case.id == AuditEvent.case_id)
             .where(AuditEvent.type.in_(("step_completed", "case_started")), AuditEvent.role.in_(SOD_ROLES))
             .distinct())
    if ctx.case_ids is not None:
        query = query.where(AuditEvent.case_id.in_(ctx.case_ids))
    roles: dict[tuple[int, str], set[str]] = defaultdict(set)
    orgs: dict[int, int] = {}
    for case_id, actor, role, org_id in ctx.session.execute(query):
        roles[(case_id, actor)].add(role)
        orgs[case_id] = org_id
    for (case_id, actor), held in roles.items():
        for pair, label in SOD_PAIRS.items():
            if pair <= held:
                names = sorted(pair)
                yield Finding("XW-02", orgs[case_id], f"{case_id}|{actor}|{'+'.join(names)}",
                              f"{actor} 在同一事项中既是{label.split('与')[0]}又是{label.split('与')[1]}",
                              {"actor": actor, "roles": names, "pair": label}, case_id=case_id, subjects=(actor,))
    # buyer and acceptor across cases: the same purchase number
    buys = ctx.fields(["B-PUR-01"], ["purchase_no"], by_org=True, require="purchase_no")
    accepts = ctx.fields(["B-PUR-03"], ["purchase_no"], by_org=True, require="purchase_no")
    if not buys or not accepts:
        return
    by_no = defaultdict(list)
    for r in buys.values():
        by_no[(r.org_id, _norm(r.text["purchase_no"]))].append(r.case_id)
    pairs = [(a, b) for a in accepts.values() for b in by_no.get((a.org_id, _norm(a.text["purchase_no"])), [])]
    if not pairs:
        return
    wanted = {c for a, b in pairs for c in (a.case_id, b)}
    actors: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for case_id, actor, data in ctx.session.execute(
            select(AuditEvent.case_id, AuditEvent.actor, AuditEvent.data)
            .where(AuditEvent.case_id.in_(wanted), AuditEvent.type == "step_completed")):
        actors[case_id][json.loads(data).get("step")].add(actor)
    for accept, buy in pairs:
        for actor in actors[accept.case_id].get("acceptance", set()) & actors[buy].get("request", set()):
            yield Finding("XW-02", accept.org_id, f"{accept.case_id}|{actor}|buyer+acceptor",
                          f"{actor} 既提出采购(事项{buy})又参加验收", {"actor": actor, "pair": "采购人与验收人",
                                                                  "purchase_case": buy,
                                                                  "purchase_no": accept.text["purchase_no"]},
                          case_id=accept.case_id, subjects=(actor,))


# --- XW-04 evidence missing on payment steps ---------------------------------------------------
PAYMENT_FIELDS = {"paid_amount", "paid_total", "final_amount", "pay_amount", "advance_amount", "fee_received"}


def _payment_steps(session: Session) -> dict[str, set[str]]:
    """Steps (by procedure) that pay money and declare evidence, in the current versions."""
    from .procedures import runtime
    from storage.models import Procedure

    found: dict[str, set[str]] = defaultdict(set)
    for proc in session.scalars(select(Procedure).where(Procedure.current_version_id.is_not(None),
                                                        Procedure.id.in_(PAYMENT_PROCEDURES))):
        d = runtime(session, proc.current_version_id).definition
        for step in d.steps.values():
            if step.evidence and any(f.name in PAYMENT_FIELDS for f in step.fields):
                found[proc.id].add(step.id)
    return found


PAYMENT_PROCEDURES = ["B-PUR-02", "B-PUR-03", "B-SVC-02", "B-SVC-04", "B-FIN-04", "B-PRJ-03", "B-PRJ-05", "V-AST-04",
                      "V-DEC-03", "C-AST-01"]


@rule("XW-04", "付款环节缺少凭证", "Evidence missing at a payment step", severity="yellow",
      procedures=PAYMENT_PROCEDURES,
      inspects="付款、报账环节(流程规定须附凭证的)是否上传了凭证文件",
      condition="流程规定须附凭证的付款环节办理时没有附任何文件")
def evidence_missing(ctx: ScanContext) -> Iterator[Finding]:
    steps = _payment_steps(ctx.session)
    for case_id, seq, _t, _at, actor, _role, data, org_id, proc, _v in ctx.events(
            ["step_completed"], procedures=list(steps)):
        if data.get("step") in steps.get(proc, ()) and not data.get("attachments"):
            yield Finding("XW-04", org_id, f"{case_id}|{seq}", f"“{data.get('name')}”未附凭证文件",
                          {"step": data.get("step"), "step_name": data.get("name"), "seq": seq},
                          case_id=case_id, subjects=(actor,))


# --- XW-05 odd hours in bulk ----------------------------------------------------------------------
@rule("XW-05", "深夜批量操作", "Actions at odd hours in bulk", severity="yellow",
      inspects="办理环节的时间与办理人",
      condition="同一人在一天的22:00–次日6:00(北京时间)办理环节达到N次",
      params=(P("odd_hours_count", "深夜批量操作次数", "integer", "10", "次"),))
def odd_hours(ctx: ScanContext) -> Iterator[Finding]:
    query = (select(AuditEvent.actor, AuditEvent.at, AuditEvent.case_id, Case.org_id)
             .join(Case, Case.id == AuditEvent.case_id).where(AuditEvent.type == "step_completed"))
    if ctx.session.get_bind().dialect.name == "postgresql":
        hour = func.extract("hour", AuditEvent.at)
    else:
        hour = func.cast(func.strftime("%H", AuditEvent.at), type_=Integer)
    query = query.where(hour >= 14, hour < 22)  # 22:00–06:00 China time
    if ctx.case_ids is not None:  # the people who just acted, over the last night (the at index)
        since = ctx.now - timedelta(days=1)
        actors = sorted(set(ctx.session.scalars(select(AuditEvent.actor).where(
            AuditEvent.case_id.in_(ctx.case_ids), AuditEvent.type == "step_completed", AuditEvent.at >= since))))
        if not actors:
            return
        query = query.where(AuditEvent.at >= since, AuditEvent.actor.in_(actors))
    groups: dict[tuple[str, date], list] = defaultdict(list)
    for actor, at, case_id, org_id in ctx.session.execute(query):
        local = _local(at) - timedelta(hours=6)  # the night belongs to the day it started
        groups[(actor, local.date())].append((case_id, org_id))
    for (actor, night), items in groups.items():
        org_id = max(set(o for _, o in items), key=lambda o: sum(1 for _, x in items if x == o))
        if len(items) >= ctx.param(org_id, "odd_hours_count"):
            cases = sorted({c for c, _ in items})
            yield Finding("XW-05", org_id, f"{actor}|{night.isoformat()}",
                          f"{actor} 在 {night.isoformat()} 夜间办理{len(items)}个环节",
                          {"actor": actor, "night": night.isoformat(), "count": len(items), "cases": cases},
                          case_id=cases[-1], subjects=(actor,))


# --- XW-06 findings of the liaison station's monthly checklist (B-SUP-01) ---------------------------
CHECK_AREAS = {"decisions": "重大事项决策", "disclosure": "村(居)务公开", "finance": "财务管理",
               "projects": "工程项目", "welfare": "惠民政策落实"}


@rule("XW-06", "月度监督检查发现问题", "Problem found by the monthly supervision checklist", severity="yellow",
      procedures=["B-SUP-01"],
      inspects="监察工作联络站月度监督检查(B-SUP-01)五个方面的检查结果和情况说明",
      condition="某一方面勾选“发现问题”(每个事项每个方面预警一次)")
def checklist_finding(ctx: ScanContext) -> Iterator[Finding]:
    names = [f"{a}_{suffix}" for a in CHECK_AREAS for suffix in ("problem", "note")]
    for r in ctx.fields(["B-SUP-01"], names).values():
        for area, label in CHECK_AREAS.items():
            if str(r.text.get(f"{area}_problem", "")).lower() not in ("true", "1", "yes"):
                continue
            note = r.text.get(f"{area}_note") or ""
            yield Finding("XW-06", r.org_id, f"{r.case_id}|{area}", f"月度监督检查发现{label}方面的问题:{note}"[:300],
                          {"area": area, "area_zh": label, "note": note, "step": r.step.get(f"{area}_problem")},
                          case_id=r.case_id)


# --- XW-07 a case stopped by a run-time failure of a condition or timer (engine.incidents) ----------
@rule("XW-07", "流程运行故障", "A condition or timer failed at run time", severity="red",
      inspects="事项留痕中的运行故障记录(条件或定时在运行时无法计算,办理未保存)",
      condition="每个事项的每种故障预警一次;管理员修正参数后在事项页面“重试”")
def run_time_incident(ctx: ScanContext) -> Iterator[Finding]:
    for case_id, seq, _t, _at, actor, _role, data, org_id, _proc, _v in ctx.events(["incident"]):
        name = data.get("node_name") or data.get("node") or "流程"
        what = data.get("what") or "流程"
        yield Finding("XW-07", org_id, f"{case_id}|{data.get('fingerprint')}",
                      f"“{name}”的{what}无法计算({data.get('reason', '')}),事项无法继续,请管理员修正参数后重试",
                      {"seq": seq, "node": data.get("node"), "node_name": name, "kind": data.get("kind"),
                       "reason": data.get("reason"), "expression": data.get("expression"),
                       "action": data.get("action")}, case_id=case_id, subjects=(actor,) if actor != "system" else ())


# --- storing ----------------------------------------------------------------------------------------
def fingerprint(rule_id: str, key: str) -> str:
    return hashlib.sha256(f"{rule_id}|{key}".encode("utf-8")).hexdigest()


def _insert(session: Session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(SupervisionWarning).on_conflict_do_nothing(index_elements=["fingerprint"])
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(SupervisionWarning).on_conflict_do_nothing(index_elements=["fingerprint"])


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


def evaluate(session: Session, *, case_ids: set[int] | None = None, rules: Iterable[str] | None = None,
             procedure_id: str | None = None, now: datetime | None = None) -> list[dict]:
    """Run rules (all, or those named) over the changed cases (or all cases) and store new warnings."""
    ctx = ScanContext(session, case_ids=case_ids, now=now)
    findings: list[Finding] = []
    for r in RULES.values():
        if rules is not None and r.id not in rules:
            continue
        if procedure_id is not None and r.procedures is not None and procedure_id not in r.procedures:
            continue
        findings.extend(r.check(ctx))
    return store(session, findings, ctx.now)


def evaluate_case(session: Session, case_id: int) -> list[dict]:
    """The incremental evaluation after a change of one case (its rules, cross-case ones in its village)."""
    proc = session.scalar(select(Case.procedure_id).where(Case.id == case_id))
    if proc is None:
        return []
    return evaluate(session, case_ids={case_id}, procedure_id=proc)


def scan(session: Session, *, rules: Iterable[str] | None = None) -> list[dict]:
    """Every rule over every case (set-based)."""
    return evaluate(session, rules=set(rules) if rules is not None else None)


TIMED_RULES = frozenset(r_id for r_id, r in RULES.items() if r.timed)


# --- reading and handling -------------------------------------------------------------------------
def _visible(session: Session, actor: directory.Actor, roles=READER_ROLES) -> set[int]:
    return directory.descendants(session, {oid for role, oid in actor.assignments if role in roles})


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
        query = query.where(SupervisionWarning.org_id.in_(_visible(session, actor) or {-1}))
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
    if row is None or (actor is not None and row[0].org_id not in _visible(session, actor)):
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
        from .cases import _lock_case

        case = _lock_case(session, w.case_id)
        audit.append_case_event(session, case, f"warning_{target}", actor=username, role=role, data=data)
    else:
        audit.append_system_event(session, f"warning_{target}", actor=username, role=role, data=data)
    w.status, w.opinion, w.handled_by, w.updated_at = target, opinion, username, audit.db_time()
    session.flush()
    return {"id": w.id, "status": target, "status_zh": STATUSES[target]}


def supervise(session: Session, warning_id: int, username: str, opinion: str) -> dict:
    """督办: a red warning opens a supervision case (T-SUP-01 at the village's township) and is
    acknowledged with the opinion."""
    from . import cases

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
    case = cases.start_case(session, "T-SUP-01", township.code, username,
                            {"title": f"督办:预警{w.id} {RULES[w.rule_id].zh}({org.name})"[:200]})
    w.supervision_case_id = case.id
    data = {"warning_id": w.id, "rule": w.rule_id, "supervision_case_id": case.id, "opinion": opinion.strip()}
    if w.case_id is not None:
        from .cases import _lock_case

        audit.append_case_event(session, _lock_case(session, w.case_id), "warning_supervised", actor=username,
                                role="", data=data)
    else:
        audit.append_system_event(session, "warning_supervised", actor=username, data=data)
    session.flush()
    return {"id": w.id, "supervision_case_id": case.id}


# --- the kinship register -------------------------------------------------------------------------
def add_kin(session: Session, org_code: str, cadre: str, person_name: str, relation: str, *, actor: str,
            note: str = "", degree: int | None = None) -> dict:
    """Declare a relationship: the cadre themself (``self``) or a relative; audited in the system chain.
    A cadre declares their own; supervisors (and administrators) of the village maintain any."""
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
    return kin_dict(row, org.code)


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
