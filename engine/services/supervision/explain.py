"""A warning in words: who (display name and role), which case (title, village, procedure), what
fact and which rule, and the exact submissions of the case file it rests on.

The rules store their facts as data (``{"actor": "nanxi.secretary", "roles": ["handler", …]}``);
this module turns them into what a supervisor reads — labelled lines with values in words (money
in 元, times in Beijing time, role keys as role names, login names as people, field keys as the
field labels of the case's procedure) — in the language of :func:`engine.render.narrative.language`.
It reads only: the case rows, the submissions of the case file, the users and their roles.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.bpmn.english import english as in_english
from engine.core import catalogue, directory, procedures
from engine.render.narrative import china, english, money_text, t, value_text
from storage.models import (
    Case, Organization, Procedure, RoleAssignment, Submission, User, WarningSubject,
)

# Labels of the facts the rules record (Chinese, English). A key missing here falls back to the field
# label of the case's procedure, then to a neutral "其他情况" (never the key itself).
LABELS: dict[str, tuple[str, str]] = {
    "accounts": ("涉及账号的人员", "People (accounts)"),
    "cadres": ("涉及干部", "Cadres concerned"),
    "days_before_end": ("距公示期满天数", "Days before the notice ended"),
    "handled": ("办理中已如实登记", "Recorded in the case"),
    "notice_end": ("公示期满日期", "Notice ends on"),
    "notice_step": ("公示环节", "Notice step"),
    "views": ("归并情况", "Grouped as"),
    "action": ("须采取的措施", "Action needed"),
    "actor": ("办理人", "Person"),
    "actual_days": ("实际公示天数", "Days actually on notice"),
    "amount": ("金额", "Amount"),
    "amounts": ("各笔金额", "Amounts"),
    "annual_rent": ("合同年租金", "Annual rent in the contract"),
    "area_zh": ("检查方面", "Area checked"),
    "audited_price": ("审定结算价", "Audited final price"),
    "average": ("近90天日均次数", "Daily average over 90 days"),
    "by": ("归并依据", "Grouped by"),
    "cadre": ("干部", "Cadre"),
    "cadre_name": ("干部姓名", "Cadre's name"),
    "cases": ("涉及事项", "Cases concerned"),
    "category": ("支出类别", "Expense category"),
    "completed_at": ("完成时间", "Completed at"),
    "contract_amount": ("合同价", "Contract price"),
    "contractors": ("承包方", "Contractors"),
    "count": ("次数", "Count"),
    "count_limit": ("笔数预警线", "Count threshold"),
    "dates": ("各笔日期", "Dates"),
    "day": ("日期", "Day"),
    "days": ("时间窗口(天)", "Window (days)"),
    "days_early": ("提前天数", "Days too early"),
    "days_to_deposit": ("存行天数", "Days until deposited"),
    "deadline": ("公开截止日", "Deadline"),
    "deal_price": ("成交年租金", "Rent agreed"),
    "december": ("12月支出", "December spending"),
    "degree": ("亲等", "Degree of kinship"),
    "due_at": ("办理时限", "Time limit"),
    "factor": ("倍数预警线", "Multiple threshold"),
    "field": ("涉及字段", "Field"),
    "first": ("应在先的日期", "Date that should come first"),
    "first_field": ("应在先的事项", "What should come first"),
    "idle_days": ("无进展天数", "Days without progress"),
    "inputs": ("表决数据", "Vote figures"),
    "kind": ("无法计算的内容", "What could not be computed"),
    "last_change": ("最后一次办理", "Last change"),
    "later": ("在后的日期", "Later date"),
    "later_field": ("却提前办理的事项", "What came too early"),
    "limit": ("预警线", "Threshold"),
    "min_count": ("笔数预警线", "Count threshold"),
    "monthly_average": ("1–11月月均支出", "Monthly average January–November"),
    "months": ("统计月数", "Months counted"),
    "night": ("夜间日期", "Night of"),
    "node_name": ("环节", "Step"),
    "note": ("检查发现", "Finding"),
    "notice_start": ("公示开始日期", "Notice started"),
    "open": ("仍未办结", "Still open"),
    "overdue_days": ("逾期天数", "Days overdue"),
    "pair": ("不相容的职务", "Incompatible duties"),
    "payee": ("收款方", "Payee"),
    "period_end": ("公示截止日期", "Notice ended"),
    "person": ("涉及人员", "Person named"),
    "previous_rent": ("上期年租金", "Previous annual rent"),
    "procedure": ("流程", "Procedure"),
    "projects": ("工程项目", "Projects"),
    "purchase_case": ("采购事项", "Purchase case"),
    "purchase_no": ("采购编号", "Purchase number"),
    "quarter": ("季度", "Quarter"),
    "quarter_end": ("季度末", "End of quarter"),
    "ratio": ("比例", "Ratio"),
    "reason": ("原因", "Reason"),
    "recorded": ("登记日期", "Recorded on"),
    "relation_zh": ("关系", "Relation"),
    "rent_received": ("实收租金", "Rent received"),
    "required_days": ("规定公示天数", "Days required on notice"),
    "role": ("承办角色", "Role"),
    "roles": ("在本事项中担任", "Roles held in this case"),
    "seal_time": ("用印时间", "Seal used at"),
    "should_take": ("按法定比例应为", "The lawful outcome"),
    "step_name": ("环节", "Step"),
    "threshold": ("进站起点", "Platform threshold"),
    "total": ("合计金额", "Total"),
    "total_limit": ("合计金额预警线", "Total threshold"),
    "value": ("供应商或品目", "Supplier or item"),
    "withdraw_date": ("撤下日期", "Taken down on"),
    "working_day": ("是否工作日", "Working day"),
    "year": ("年度", "Year"),
}
# Facts that stay out of the words: internal keys, raw expressions, and values told under another key.
HIDDEN = frozenset({"seq", "step", "node", "gateway", "expression", "condition", "area", "relation",
                    "statutory_params", "fingerprint", "person_id", "cadre_person_id"})
MONEY = frozenset({"amount", "threshold", "total", "previous_rent", "deal_price", "contract_amount", "audited_price",
                   "december", "monthly_average", "rent_received", "annual_rent", "total_limit", "amounts"})
TIMES = frozenset({"due_at", "last_change", "completed_at"})
DAYS = frozenset({"actual_days", "days", "days_early", "days_to_deposit", "idle_days", "overdue_days", "required_days"})
PEOPLE = frozenset({"actor", "cadre", "accounts", "cadres"})
BY = {"supplier": ("同一供应商", "the same supplier"), "item": ("同一品目", "the same item")}
KINDS = {"timer": ("计时", "a timer"), "gateway": ("分支条件", "a branch condition"),
         "time_limit": ("办理时限", "a time limit"), "due": ("办理时限", "a time limit")}
ALIASES = {"category": "expense_category"}  # a fact named after a field of another name
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_.]*[A-Za-z0-9]|[A-Za-z]")


# --- values in words -------------------------------------------------------------------------------
def _label(key: str, fields: Mapping[str, Any]) -> str:
    if key in LABELS:
        zh, en = LABELS[key]
        return t(zh, en)
    f = fields.get(key)
    if f is not None:
        return f.label
    return t("其他情况", "Other fact")


def _money(value: Any) -> str:
    try:
        Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    return money_text(value)


def _ratio(value: Any) -> str:
    try:
        r = Fraction(str(value))
    except (ValueError, ZeroDivisionError):
        return str(value)
    return f"{float(r):.0%}"


def _yes(value: Any) -> str:
    return t("是", "yes") if value in (True, "true", "True", 1) else t("否", "no")


def role_name(key: Any) -> str:
    role = catalogue.roles().get(str(key or ""))
    if role is None:
        return t("其他角色", "another role")
    return role.en if english() and role.en else role.zh


class _Words:
    """What turning one warning's facts into words needs: names, field labels, case titles."""

    def __init__(self, names: Mapping[str, str], fields: Mapping[str, Any], titles: Mapping[int, str]):
        self.names, self.fields, self.titles = names, fields, titles

    def person(self, username: Any) -> str:
        u = str(username or "")
        return self.names.get(u) or u

    def text(self, text: str) -> str:
        """A rule's sentence with login names as people and field keys as their labels."""
        for username in sorted(self.names, key=len, reverse=True):
            if username and username in text and self.names[username]:
                text = text.replace(username, self.names[username])

        def swap(m: re.Match) -> str:
            f = self.fields.get(m.group(0))
            return f"“{f.label}”" if f is not None else m.group(0)

        # a UTC time written into a sentence (2026-03-12T09:30) in Beijing time
        text = _ISO.sub(lambda m: t(f"{china(m.group(0))}(北京时间)", f"{china(m.group(0))} (Beijing time)"), text)
        return _WORD.sub(swap, text)

    def value(self, rule: str, key: str, value: Any) -> str:
        sep = t("、", ", ")
        if value is None or value == "":
            return "—"
        if key in PEOPLE:  # one account, a list of them, or several joined by 、
            names = value if isinstance(value, list) else str(value).split("、")
            return sep.join(self.person(v) for v in names)
        if key == "views" and isinstance(value, list):
            return t(";", "; ").join(f"{self.value(rule, 'by', v.get('by'))}“{v.get('value', '')}”"
                                     for v in value if isinstance(v, Mapping))
        if key == "roles" and isinstance(value, list):
            return sep.join(role_name(r) for r in value)
        if key == "role":
            return role_name(value)
        if key == "pair" and english() and isinstance(self._current.get("roles"), list):
            return " and ".join(role_name(r) for r in self._current["roles"])  # the rule writes the pair in Chinese
        if key in ("first_field", "later_field", "field"):
            f = self.fields.get(str(value))
            return f.label if f is not None else t("其他字段", "another field")
        if key == "procedure":
            return str(self.titles.get(f"p:{value}") or value)
        if key == "by":
            zh, en = BY.get(str(value), (str(value), str(value)))
            return t(zh, en)
        if key == "kind" and rule == "XW-07":
            zh, en = KINDS.get(str(value), ("计算", "a computation"))
            return t(zh, en)
        if key == "inputs" and isinstance(value, Mapping):
            return t(";", "; ").join(f"{_label(k, self.fields)} {v}" for k, v in value.items())
        f = self.fields.get(ALIASES.get(key, key))
        if f is not None and f.type in ("choice", "boolean"):
            return value_text(f, value)
        if key in ("open", "working_day", "handled"):
            return _yes(value)
        if key == "ratio":
            return _ratio(value)
        if key in TIMES:
            return t(f"{china(value)}(北京时间)", f"{china(value)} (Beijing time)")
        if key == "seal_time":
            return str(value).replace("T", " ")[:16]
        if key == "quarter":
            return t(f"第{value}季度", f"Q{value}")
        # the threshold ``limit`` is money beside an amount (cash, payments to people), else days
        if key in MONEY or (key == "limit" and "amount" in self._current):
            if isinstance(value, list):
                return sep.join(_money(v) for v in value)
            return _money(value)
        if key in DAYS or key == "limit":
            return t(f"{value} 天", f"{value} days")
        if isinstance(value, bool):
            return _yes(value)
        if isinstance(value, list):
            return sep.join(str(v) for v in value)
        if isinstance(value, Mapping):
            return t(";", "; ").join(f"{_label(str(k), self.fields)} {v}" for k, v in value.items())
        return self.text(str(value))

    _current: Mapping[str, Any] = {}

    def rows(self, rule: str, facts: Mapping[str, Any]) -> list[dict]:
        self._current = facts
        out = []
        for key, value in facts.items():
            if key in HIDDEN or key == "cases" or key == "purchase_case":
                continue
            if key == "cadre_name" and facts.get("cadre"):
                continue
            out.append({"key": key, "label": _label(key, self.fields), "text": self.value(rule, key, value)})
        return out


# --- the warning in words --------------------------------------------------------------------------
def _case_rows(session: Session, case_ids: Iterable[int]) -> dict[int, dict]:
    ids = {int(c) for c in case_ids if isinstance(c, int) or str(c).isdigit()}
    if not ids:
        return {}
    rows = session.execute(select(Case.id, Case.title, Case.procedure_id, Case.procedure_version_id, Case.status,
                                  Organization.name, Procedure.name, Procedure.name_en)
                           .join(Organization, Organization.id == Case.org_id)
                           .join(Procedure, Procedure.id == Case.procedure_id)
                           .where(Case.id.in_(ids))).all()
    return {cid: {"id": cid, "title": title or t(f"事项 {cid}", f"Case {cid}"), "procedure_id": proc,
                  "procedure_name": (name_en if english() and name_en else name), "village": village,
                  "status": status, "version_id": vid}
            for cid, title, proc, vid, status, village, name, name_en in rows}


def _people(session: Session, usernames: Iterable[str], chain: Iterable[int]) -> dict[str, dict]:
    """username → display name and the roles they hold at the warning's organization and above."""
    names = {u for u in usernames if u and u not in ("system", "public", "cli")}
    if not names:
        return {}
    chain = set(chain)
    out = {u: {"username": u, "name": u, "roles": []} for u in names}
    for username, display in session.execute(select(User.username, User.display_name).where(User.username.in_(names))):
        out[username]["name"] = display or username
    for username, role in session.execute(
            select(User.username, RoleAssignment.role_key).join(RoleAssignment, RoleAssignment.user_id == User.id)
            .where(User.username.in_(names), RoleAssignment.org_id.in_(chain or {-1}))
            .order_by(RoleAssignment.id)):
        name = role_name(role)
        if name not in out[username]["roles"]:
            out[username]["roles"].append(name)
    return out


def _named(w: Mapping) -> list[str]:
    """The people a warning is about: the actor or cadre of its facts, then the subjects it names."""
    facts = w.get("facts") or {}
    out: list[str] = []
    for k in ("accounts", "actor", "cadre", "cadres"):  # accounts: one person's several (newer facts)
        value = facts.get(k)
        for u in (value if isinstance(value, list) else str(value or "").split("、")):
            if u and u not in out:
                out.append(str(u))
    for s in w.get("named") or []:
        if s not in out:
            out.append(s)
    return out


def _field_map(session: Session, version_id: int | None) -> dict[str, Any]:
    if version_id is None:
        return {}
    try:
        return dict(procedures.runtime(session, version_id).definition.fields_by_name())
    except Exception:  # noqa: BLE001 - a version that no longer parses: facts keep neutral labels
        return {}


def _submissions(session: Session, w: Mapping, fields: Mapping[str, Any], names: Mapping[str, str]) -> list[dict]:
    """The submissions of the case file the warning rests on (at most 6): the step event it names,
    the submissions carrying the fields it names, or the named actor's submissions in the case."""
    case_id = w.get("case_id")
    if case_id is None:
        return []
    facts = w.get("facts") or {}
    subs = list(session.scalars(select(Submission).where(Submission.case_id == case_id).order_by(Submission.seq)))
    chosen: list[Submission] = []
    if facts.get("seq"):
        chosen = [s for s in subs if s.event_seq == facts.get("seq")]
    if not chosen:
        wanted = {k for k in facts if k in fields} | {str(facts[k]) for k in ("first_field", "later_field", "field")
                                                     if facts.get(k)}
        if facts.get("step"):
            chosen = [s for s in subs if s.step_id == facts["step"]]
        if not chosen and wanted:
            chosen = [s for s in subs if wanted & set(json.loads(s.values or "{}"))]
    if not chosen and (facts.get("actor") or facts.get("accounts")):
        accounts = facts.get("accounts") if isinstance(facts.get("accounts"), list) else \
            str(facts.get("actor")).split("、")
        chosen = [s for s in subs if s.actor in accounts]
    return [{"case_id": case_id, "seq": s.seq, "round": s.round,
             "step_name": (in_english(s.step_name, kind="steps") or s.step_name) if english() else s.step_name,
             "by_name": names.get(s.actor) or s.actor, "at": china(s.at.isoformat() + "Z") if s.at else ""}
            for s in chosen[-6:]]


def explain(session: Session, w: dict) -> dict:
    """The warning ``w`` (a :func:`~engine.services.supervision.warnings.warning_dict`, or the
    :func:`get_warning` answer) with its words added: ``words`` = {summary, case, people, facts,
    cases, submissions}."""
    return explain_many(session, [w], detail=True)[0]


def explain_many(session: Session, ws: list[dict], *, detail: bool = False) -> list[dict]:
    """Words for a page of warnings (the list: case, people, summary; ``detail``: facts and links too)."""
    if not ws:
        return ws
    ids = [w["id"] for w in ws]
    named: dict[int, list[str]] = {}
    for wid, subject in session.execute(select(WarningSubject.warning_id, WarningSubject.subject)
                                        .where(WarningSubject.warning_id.in_(ids)).order_by(WarningSubject.id)):
        named.setdefault(wid, []).append(subject)
    case_ids: set[int] = set()
    for w in ws:
        w["named"] = named.get(w["id"], [])
        facts = w.get("facts") or {}
        if w.get("case_id") is not None:
            case_ids.add(w["case_id"])
        for c in facts.get("cases") or []:
            case_ids.add(c)
        if str(facts.get("purchase_case") or "").isdigit():
            case_ids.add(int(facts["purchase_case"]))
    cases = _case_rows(session, case_ids)
    orgs = dict(session.execute(select(Organization.code, Organization.id)
                                .where(Organization.code.in_({w.get("org") for w in ws}))).all())
    everyone = {u for w in ws for u in _named(w)}
    if detail:
        everyone |= {s for w in ws for s in w.get("subjects") or []}
        everyone |= {str(e.get("actor") or "") for w in ws for e in w.get("history") or []}
    chains: dict[str, tuple[int, ...]] = {code: directory.chain_ids(session, oid) for code, oid in orgs.items()}
    people = _people(session, everyone, {i for c in chains.values() for i in c})
    names = {u: p["name"] for u, p in people.items()}
    proc_names = {pid: (en if english() and en else zh) for pid, zh, en in
                  session.execute(select(Procedure.id, Procedure.name, Procedure.name_en))}
    fields_of: dict[int, dict] = {}
    for w in ws:
        case = cases.get(w.get("case_id")) if w.get("case_id") is not None else None
        vid = case["version_id"] if case else None
        if vid not in fields_of:
            fields_of[vid] = _field_map(session, vid)
        fields = fields_of[vid]
        words = _Words(names, fields, {f"p:{k}": v for k, v in proc_names.items()})
        who = [dict(people[u]) for u in _named(w) if u in people]
        facts = w.get("facts") or {}
        for p in who:  # the roles a rule names (held in this case) say more than every role held
            acted = facts.get("accounts") if isinstance(facts.get("accounts"), list) else [facts.get("actor")]
            if p["username"] in acted and isinstance(facts.get("roles"), list):
                p["roles"] = [role_name(r) for r in facts["roles"]]
            p["roles"] = p["roles"][:3]
        entry = {"summary": words.text(w.get("summary") or ""), "case": case, "people": who}
        if detail:
            linked = [c for c in facts.get("cases") or [] if c in cases]
            if str(facts.get("purchase_case") or "").isdigit() and int(facts["purchase_case"]) in cases:
                linked.append(int(facts["purchase_case"]))
            entry["facts"] = words.rows(w["rule"], facts)
            entry["cases"] = [cases[c] for c in linked]
            entry["submissions"] = _submissions(session, w, fields, names)
            for e in w.get("history") or []:
                e["actor_name"] = names.get(str(e.get("actor") or "")) or e.get("actor")
            shown = {p["username"] for p in who}
            entry["involved"] = [{**people[u], "roles": people[u]["roles"][:3]} for u in w.get("subjects") or []
                                 if u in people and u not in shown]
        w["words"] = entry
    return ws


# --- 立案督办: the supervision case filled in from the warning ----------------------------------------
TOPICS = {"WR-01": "project", "WR-02": "project", "WR-03": "funds", "WR-11": "funds", "WR-12": "funds",
          "WR-15": "assets", "WR-16": "assets", "WR-17": "project", "WR-23": "funds", "WR-24": "funds"}


def supervision_initial(session: Session, w: dict) -> dict:
    """The first step of the supervision case (T-SUP-01 受理登记) as the warning already tells it:
    what was found (in words), the village, the kind of problem. Always in Chinese (the record)."""
    from engine.render.narrative import language
    from .registry import RULES

    with language("zh"):
        explain(session, w)
        words = w["words"]
        rule = RULES.get(w["rule"])
        lines = [f"预警{w['id']}({rule.id} {rule.zh},{words_severity(w['severity'])})" if rule else f"预警{w['id']}",
                 f"发现:{words['summary']}"]
        if words["case"]:
            c = words["case"]
            lines.append(f"事项:{c['title']}({c['procedure_name']},{c['village']},事项编号 {c['id']})")
        if words["people"]:
            lines.append("涉及人员:" + "、".join(
                p["name"] + (f"({'、'.join(p['roles'])})" if p["roles"] else "") for p in words["people"]))
        lines += [f"{f['label']}:{f['text']}" for f in words["facts"]]
        if rule:
            lines.append(f"预警条件:{rule.condition}")
    topic = TOPICS.get(w["rule"], "conduct" if w["rule"].startswith("XW-") else "other")
    return {"report_text": "\n".join(lines)[:2000], "about_org": w.get("org_name") or "", "topic": topic}


def words_severity(key: str) -> str:
    return {"red": "红色预警", "yellow": "黄色预警", "blue": "蓝色预警"}.get(key, "预警")
