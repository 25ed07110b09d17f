"""Read-only queries of the public pages (no login). Lists come from the derived tables
(``timer_due``, ``work_item``, ``case_field``) and the audit events; no case's SpiffWorkflow state
is ever deserialized here. What may be shown follows :mod:`engine.services.public` (public fields only,
personal data masked)."""

from __future__ import annotations

import json
import math
from collections import OrderedDict, defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core import audit, catalogue, cases, forms, procedures, variants
from engine.core import objections as engine_objections
from engine.services import public as rules
from engine.core.definitions import ProcedureDefinition
from engine.render import steplist
from engine.render.diagram import path_svg
from storage.models import (AuditEvent, Case, CaseField, Organization, Procedure, ProcedureVersion, RoleAssignment,
                            TimerDue, User, WorkItem)

from engine.services import reads
from engine.services.words import CHINA, category_zh, role_zh
from engine.services.words import gettext as _

BOARD_ORGS = ("village", "community")
CLOSED_OK = ("running", "completed")  # money and subsidies of cases not rejected, terminated or cancelled

# 我们的钱包: procedure → (direction, amount fields in order of preference, counterparty field).
# Only public fields are listed; person counterparties are masked.
MONEY = {
    "B-FIN-01": ("out", ("amount",), "payee"),
    "C-FIN-01": ("out", ("amount",), None),
    "B-FIN-02": ("in", ("deposited_amount", "amount"), None),
    "B-FIN-04": ("out", ("paid_total", "payable_total"), None),
    "V-FIN-01": ("in", ("amount",), "counterparty"),
    "B-PUR-01": ("out", ("contract_amount", "deal_amount"), "supplier"),
    "B-PUR-02": ("out", ("paid_amount", "contract_amount"), "supplier"),
    "B-PUR-03": ("out", ("paid_amount",), None),
    "B-PUR-04": ("out", ("service_fee",), None),
    "C-PUR-01": ("out", ("final_payment", "contract_amount"), None),
    "B-PRJ-03": ("out", ("paid_total", "pay_amount"), None),
    "B-AST-02": ("in", ("proceeds", "deal_price"), None),
    "V-AST-01": ("in", ("rent_received", "annual_rent"), "lessee_person"),
    "V-AST-02": ("in", ("contract_fee",), "contractor_person"),
    "C-AST-01": ("in", ("fee_received", "fee_amount"), None),
}
# 补贴去哪了: procedure → (amount fields by preference, recipient name fields, id number field, count field).
SUBSIDIES = {
    "B-SVC-01": (("confirmed_amount", "proposed_amount"), ("recipient_name", "applicant_name"), "id_number", None),
    "B-SVC-02": (("paid_amount", "subsidy_amount", "approved_amount"), ("applicant_name",), "id_number", None),
    "B-SVC-04": (("paid_amount", "total_amount"), (), None, "recipients_count"),
    "V-AST-04": (("paid_total",), (), None, None),
}
# 拟发放 or 已发放: procedure → (the step that confirms the money was paid, its date field). Until that
# step is done, an amount is only proposed (拟发放 / 拟支出: on notice, or still being reviewed).
PAID_BY = {
    "B-SVC-01": ("county_confirm", "confirm_date"),
    "B-SVC-02": ("pay", "paid_date"),
    "B-SVC-04": ("pay", "paid_date"),
    "V-AST-04": ("payout", "payout_date"),
    "B-FIN-01": ("center_entry", "payment_date"),
    "C-FIN-01": ("street_pay", "payment_date"),
    "B-PUR-02": ("reimburse", "paid_date"),
    "B-PUR-03": ("reimburse", "paid_date"),
}


def month_of(at: datetime) -> str:
    return (at + CHINA).strftime("%Y-%m")


def version_for(session: Session, proc, org: Organization) -> int:
    """The version id new cases of ``proc`` at ``org`` run: its township's published variant, else the
    district's current version (what the public page of that village shows)."""
    return variants.version_for(session, proc.id, org)[0].id


def definition(session: Session, version_id: int) -> ProcedureDefinition:
    return procedures.runtime(session, version_id).definition


def board_org(session: Session, code: str) -> Organization | None:
    org = session.scalar(select(Organization).where(Organization.code == code))
    return org if org is not None and org.kind in BOARD_ORGS else None


# --- the board --------------------------------------------------------------------------------------

def on_notice(session: Session, org: Organization) -> list[dict]:
    """Disclosures whose notice period runs now, soonest end first."""
    now = audit.db_time()
    rows = session.execute(
        select(TimerDue.case_id, TimerDue.node_id, TimerDue.due_at, TimerDue.task_id, Case.title, Case.procedure_id,
               Case.procedure_version_id, Case.tracking_code)
        .join(Case, Case.id == TimerDue.case_id)
        .where(Case.org_id == org.id, Case.status == cases.RUNNING, TimerDue.due_at > now)
        .order_by(TimerDue.due_at).limit(60)).all()
    found = []
    for r in rows:
        d = definition(session, r.procedure_version_id)
        node = d.nodes.get(r.node_id)
        if node is None or not node.notice_for:
            continue
        step = d.steps.get(node.notice_for)
        found.append({"case_id": r.case_id, "title": r.title, "d": d,
                      "procedure": d.name, "category": d.category, "affair": rules.affair_of(d.category),
                      "step": step.name if step else "",
                      "what": (step.disclosure or {}).get("what", "") if step else "",
                      "where": (step.disclosure or {}).get("where", "") if step else "",
                      "due_at": r.due_at, "days_left": max(math.ceil((r.due_at - now).total_seconds() / 86400), 0),
                      "code": cases.format_tracking_code(r.tracking_code), "objections": 0, "content": "",
                      "timer": r.task_id})
    if found:
        ids = [f["case_id"] for f in found]
        counts = engine_objections.notice_counts(session, ids)  # the objections filed under this very notice
        contents = dict(session.execute(
            select(CaseField.case_id, CaseField.text_value).where(CaseField.case_id.in_(ids),
                                                                  CaseField.name == "notice_content")).all())
        titles = list_titles(session, [(f["case_id"], f["title"], f.pop("d")) for f in found])
        for f in found:
            f["title"] = titles[f["case_id"]]
            f["objections"] = counts.get((f["case_id"], f.pop("timer")), 0)
            f["content"] = contents.get(f["case_id"], "")  # notice_content is a public field
    return found


def past_notices(session: Session, org: Organization, *, limit: int = 60) -> list[dict]:
    """Ended notice periods (``timer_fired`` events of notice timers), newest first, grouped by month
    and by the three affairs: [{month, affairs: {党务: [...], 村务: [...], 财务: [...]}}]."""
    # The newest ids first, from the (case_id, type, at) index alone, by the organization's cases;
    # then only those rows. A plain join made SQLite walk every timer_fired event of the district
    # (5 ms at 2,600 cases, growing); reading every row of the village before sorting cost 3.4 ms
    # at 300 cases a village, this 0.6 ms.
    newest = (select(AuditEvent.id)
              .where(AuditEvent.case_id.in_(select(Case.id).where(Case.org_id == org.id).scalar_subquery()),
                     AuditEvent.type == "timer_fired")
              .order_by(AuditEvent.at.desc()).limit(limit))
    rows = session.execute(
        select(AuditEvent.case_id, AuditEvent.at, AuditEvent.data, Case.title, Case.procedure_version_id,
               Case.tracking_code)
        .join(Case, Case.id == AuditEvent.case_id)
        .where(AuditEvent.id.in_(newest.scalar_subquery()))
        .order_by(AuditEvent.at.desc())).all()
    months: "OrderedDict[str, dict[str, list]]" = OrderedDict()
    listed: list[dict] = []
    for r in rows:
        data = json.loads(r.data)
        if not data.get("notice_for"):
            continue
        d = definition(session, r.procedure_version_id)
        step = d.steps.get(data["notice_for"])
        affair = rules.affair_of(d.category)
        bucket = months.setdefault(month_of(r.at), {a: [] for a in rules.AFFAIRS_ORDER})
        entry = {"case_id": r.case_id, "title": r.title, "d": d, "procedure": d.name,
                 "step": step.name if step else "", "ended_at": r.at,
                 "code": cases.format_tracking_code(r.tracking_code)}
        bucket[affair].append(entry)
        listed.append(entry)
    titles = list_titles(session, [(e["case_id"], e["title"], e.pop("d")) for e in listed])
    for e in listed:
        e["title"] = titles[e["case_id"]]
    return [{"month": m, "affairs": a} for m, a in months.items()]


def edition_procedures(session: Session, org: Organization) -> list[dict]:
    edition = "village" if org.kind == "village" else "community"
    listed = procedures.list_procedures(session, edition=edition)
    groups = []
    for code, cat in catalogue.categories().items():
        items = [p for p in listed if p["category"] == code]
        if items:
            groups.append({"code": code, "name": cat.zh, "items": items})
    return groups


def cadres(session: Session, org: Organization) -> list[dict]:
    """The people holding roles at this village or community (display names only, never user names)."""
    rows = session.execute(
        select(User.id, User.username, User.display_name, RoleAssignment.role_key)
        .join(RoleAssignment, RoleAssignment.user_id == User.id)
        .where(RoleAssignment.org_id == org.id, User.active.is_(True))
        .order_by(User.id)).all()
    people: "OrderedDict[int, dict]" = OrderedDict()
    for r in rows:
        shown = (r.display_name or "").strip()
        if not shown or shown == r.username:  # a login name is never shown
            shown = _("(未登记姓名)")
        entry = people.setdefault(r.id, {"name": shown, "duties": []})
        entry["duties"].append(r.role_key)  # shown with the role_zh filter
    return list(people.values())


def changes(session: Session, org: Organization, *, limit: int = 5) -> list[dict]:
    """The latest republished procedures of the edition (version 2 and later) with their notes."""
    edition = "village" if org.kind == "village" else "community"
    rows = session.execute(
        select(ProcedureVersion.procedure_id, ProcedureVersion.version, ProcedureVersion.published_at,
               ProcedureVersion.note, Procedure.name)
        .join(Procedure, Procedure.id == ProcedureVersion.procedure_id)
        .where(ProcedureVersion.version > 1, Procedure.edition.in_((edition, "both")),
               ~ProcedureVersion.procedure_id.contains("@"))  # not townships' variants (numbered on their own)
        .order_by(ProcedureVersion.published_at.desc()).limit(limit)).all()
    return [{"procedure_id": r.procedure_id, "name": r[4], "version": r.version, "at": r.published_at,
             "note": r.note} for r in rows]


# --- money --------------------------------------------------------------------------------------

PER_PAGE = 50  # items of 我们的钱包 / 补贴去哪了 per page; totals always cover every record


def _field_rows(session: Session, org: Organization, procedure_ids: list[str], names: set[str]):
    """Every finished-or-running case of these procedures at ``org`` (newest first) with the named
    field values: light rows, so that totals cover all records while only a page is dressed up."""
    case_rows = session.execute(
        select(Case.id, Case.title, Case.procedure_id, Case.procedure_version_id, Case.tracking_code)
        .where(Case.org_id == org.id, Case.procedure_id.in_(procedure_ids), Case.status.in_(CLOSED_OK))
        .order_by(Case.updated_at.desc())).all()
    ids = [r.id for r in case_rows]
    values: dict[int, dict[str, Any]] = defaultdict(dict)
    for chunk in range(0, len(ids), 500):  # bounded IN lists
        for f in session.execute(select(CaseField.case_id, CaseField.name, CaseField.type, CaseField.text_value,
                                        CaseField.number_value, CaseField.updated_at)
                                 .where(CaseField.case_id.in_(ids[chunk:chunk + 500]), CaseField.name.in_(names))):
            values[f.case_id][f.name] = f
    return case_rows, values


def _approval_paths(session: Session, ids: list[int]) -> dict[int, list[str]]:
    paths: dict[int, list[str]] = defaultdict(list)
    if not ids:
        return paths
    for r in session.execute(select(AuditEvent.case_id, AuditEvent.data)
                             .where(AuditEvent.case_id.in_(ids), AuditEvent.type == "step_completed")
                             .order_by(AuditEvent.case_id, AuditEvent.seq)):
        name = json.loads(r.data).get("name") or ""
        if name and (not paths[r.case_id] or paths[r.case_id][-1] != name):
            paths[r.case_id].append(name)
    return paths


def _amount_items(session: Session, case_rows, values, amounts_of) -> list[dict]:
    """One item per case that has an amount, newest first: date, month, amount, the case row."""
    items = []
    for r in case_rows:
        got = values.get(r.id, {})
        amount_row = next((got[n] for n in amounts_of(r.procedure_id) if n in got and got[n].number_value is not None),
                          None)
        if amount_row is None:
            continue
        items.append({"date": amount_row.updated_at, "month": month_of(amount_row.updated_at), "row": r,
                      "got": got, "amount": Decimal(amount_row.number_value),
                      "code": cases.format_tracking_code(r.tracking_code)})
    items.sort(key=lambda i: i["date"], reverse=True)
    return items


def _mark_paid(session: Session, items: list[dict]) -> None:
    """Each outgoing item of a procedure in :data:`PAID_BY` is 已发放 (``paid``: the confirming step is
    done, with its name and date) or 拟发放 (``proposed``: direction ``proposed``, kept out of the paid
    totals)."""
    for i in items:
        paid_by = PAID_BY.get(i["row"].procedure_id)
        if paid_by is None or i["direction"] != "out":
            i["status"], i["paid_on"], i["paid_step"] = "", "", ""
            continue
        step_id, date_field = paid_by
        done = i["got"].get(date_field)
        if done is not None and done.text_value:
            step = definition(session, i["row"].procedure_version_id).steps.get(step_id)
            i["status"], i["paid_on"], i["paid_step"] = "paid", str(done.text_value)[:10], step.name if step else ""
        else:
            i["status"], i["paid_on"], i["paid_step"] = "proposed", "", ""
            i["direction"] = "proposed"


def _page_of(items: list[dict], page: int) -> tuple[list[dict], int, int]:
    pages = max(1, math.ceil(len(items) / PER_PAGE))
    page = min(max(page, 1), pages)
    return items[(page - 1) * PER_PAGE:page * PER_PAGE], page, pages


def money(session: Session, org: Organization, *, page: int = 1) -> dict:
    """我们的钱包: income and spending items by month (a page of them), with totals over every record
    by month and by category."""
    names = {n for _, amounts, party in MONEY.values() for n in (*amounts, party) if n}
    names |= {field for pid, (_, field) in PAID_BY.items() if pid in MONEY}
    case_rows, values = _field_rows(session, org, list(MONEY), names)
    items = _amount_items(session, case_rows, values, lambda pid: MONEY[pid][1])
    for i in items:
        r = i["row"]
        d = definition(session, r.procedure_version_id)
        i["d"], i["direction"], i["procedure"] = d, MONEY[r.procedure_id][0], d.name
        i["category"] = category_zh(d.category) if d.category in catalogue.categories() else ""
    _mark_paid(session, items)
    shown, page, pages = _page_of(items, page)
    paths = _approval_paths(session, [i["row"].id for i in shown])
    titles = list_titles(session, [(i["row"].id, i["row"].title, i["d"]) for i in shown])
    for i in shown:
        r, party = i["row"], MONEY[i["row"].procedure_id][2]
        i["case_id"], i["title"], i["path"] = r.id, titles[r.id], paths.get(r.id, [])
        i["counterparty"] = ""
        if party and party in i["got"]:
            i["counterparty"] = rules.public_value(i["d"].fields_by_name().get(party), i["got"][party].text_value) or ""
    return _grouped(items, shown, page, pages)


def _grouped(items: list[dict], shown: list[dict], page: int, pages: int) -> dict:
    """Totals over all ``items``; months of the ``shown`` page, each with its whole month's totals."""
    month_totals: dict[str, dict[str, Decimal]] = defaultdict(
        lambda: {"in": Decimal(0), "out": Decimal(0), "proposed": Decimal(0)})
    by_category: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    total = {"in": Decimal(0), "out": Decimal(0), "proposed": Decimal(0)}  # proposed: 拟发放, not in out
    for item in items:
        month_totals[item["month"]][item["direction"]] += item["amount"]
        total[item["direction"]] += item["amount"]
        by_category[(item["category"], item["direction"])] += item["amount"]
    months: "OrderedDict[str, dict]" = OrderedDict()
    for item in shown:
        m = months.setdefault(item["month"], {"month": item["month"], "items": [], **month_totals[item["month"]]})
        m["items"].append({k: v for k, v in item.items() if k not in ("row", "got", "d")})
    return {"months": list(months.values()), "total": total, "count": len(items), "page": page, "pages": pages,
            "per_page": PER_PAGE,
            "categories": [{"category": c, "direction": dr, "amount": a} for (c, dr), a in sorted(by_category.items())]}


def subsidies(session: Session, org: Organization, *, page: int = 1) -> dict:
    """补贴去哪了: welfare disbursements (a page of them, totals over all), names and ids masked."""
    names = {n for amounts, people, idn, count in SUBSIDIES.values() for n in (*amounts, *people, idn, count) if n}
    names |= {field for pid, (_, field) in PAID_BY.items() if pid in SUBSIDIES}
    case_rows, values = _field_rows(session, org, list(SUBSIDIES), names)
    items = _amount_items(session, case_rows, values, lambda pid: SUBSIDIES[pid][0])
    for i in items:
        d = definition(session, i["row"].procedure_version_id)
        i["procedure"] = i["category"] = d.name
        i["direction"] = "out"
    _mark_paid(session, items)
    shown, page, pages = _page_of(items, page)
    for i in shown:
        _, people, idn, count = SUBSIDIES[i["row"].procedure_id]
        got = i["got"]
        name_row = next((got[n] for n in people if n in got), None)
        i["recipient"] = forms.mask("person", name_row.text_value) if name_row else ""
        i["id_number"] = forms.mask("idnumber", got[idn].text_value) if idn and idn in got else ""
        i["count"] = got[count].text_value if count and count in got else ""
    return _grouped(items, shown, page, pages)


# --- a case ---------------------------------------------------------------------------------------

def procedure(session: Session, procedure_id: str) -> Procedure | None:
    return session.get(Procedure, procedure_id)


def case_by_code(session: Session, code: str) -> Case | None:
    normal = cases.normalize_tracking_code(code)
    if len(normal) != 12:
        return None
    return session.scalar(select(Case).where(Case.tracking_code == normal))


def public_title(session: Session, d: ProcedureDefinition, case_id: int, title: str,
                 events: list[dict] | None = None) -> str:
    """The case title for the public: the procedure name when it came from a private field or the
    procedure is about one person; personal data typed into it masked (engine.public.mask_title)."""
    if not title or title == d.name:
        return d.name
    if events is None:
        events = [{"type": r.type, "data": json.loads(r.data)} for r in session.execute(
            select(AuditEvent.type, AuditEvent.data).where(AuditEvent.case_id == case_id,
                                                           AuditEvent.type.in_(("case_started", "step_completed"))))]
    private = rules.private_values(d, events)
    if title.strip() in private or any(title.strip() in p for p in private if p):
        return d.name
    return rules.mask_title(d, title, rules.personal_values(d, events))


_PUBLIC_NAMES: dict[str, frozenset[str]] = {}


def _public_names(d: ProcedureDefinition) -> frozenset[str]:
    found = _PUBLIC_NAMES.get(d.content_hash)
    if found is None:
        found = _PUBLIC_NAMES[d.content_hash] = frozenset(n for n, f in d.fields_by_name().items() if f.public)
    return found


def list_titles(session: Session, rows: list[tuple[int, str, ProcedureDefinition]]) -> dict[int, str]:
    """Public titles of many cases at once (lists): a title equal to, or part of, a private text value
    of its case (``case_field``) gives way to the procedure name."""
    ids = [case_id for case_id, title, d in rows if title and title != d.name]
    private: dict[int, list[str]] = defaultdict(list)
    personal: dict[int, list[str]] = defaultdict(list)
    if ids:
        defs = {case_id: d for case_id, _, d in rows}
        # By case (the unique (case_id, name) index). The type is filtered as ``type || ''``: a plain
        # ``type IN (…)`` makes SQLite walk the (type, …) index of every case instead (14 ms, not 0.8).
        for r in session.execute(select(CaseField.case_id, CaseField.name, CaseField.type, CaseField.text_value)
                                 .where(CaseField.case_id.in_(ids), CaseField.type.concat("").in_(
                                     ("text", "textarea", "person", "phone", "idnumber")))):
            if r.type in ("person", "phone", "idnumber"):
                personal[r.case_id].append(r.text_value.strip())
            elif r.name not in _public_names(defs[r.case_id]):
                private[r.case_id].append(r.text_value.strip())
    shown = {}
    for case_id, title, d in rows:
        t = (title or "").strip()
        hidden = not t or t == d.name or any(t == p or (p and t in p) or (p and p in t) for p in private[case_id])
        shown[case_id] = d.name if hidden else rules.mask_title(d, t, personal[case_id])
    return shown


def case_page(session: Session, case: Case) -> dict:
    """Everything the public progress page (and its JSON) shows of a case."""
    d = definition(session, case.procedure_version_id)
    history = [audit.event_dict(e) for e in audit.case_events(session, case.id)]
    org = session.get(Organization, case.org_id)
    version = session.get(ProcedureVersion, case.procedure_version_id)
    roles = catalogue.roles()
    steps, objections = [], 0
    for ev in history:
        data, kind = ev["data"], ev["type"]
        if kind == "case_started":
            steps.append({"at": ev["at"], "name": _("发起"), "role": "", "fields": []})
        elif kind == "step_completed":
            step = d.steps.get(data.get("step") or "")
            role = role_zh(ev["role"]) if ev["role"] in roles else ""
            steps.append({"at": ev["at"], "name": step.name if step else data.get("name", ""), "role": role,
                          "fields": rules.public_fields(d, data.get("step") or "", data.get("data") or {})})
        elif kind == "timer_fired":
            steps.append({"at": ev["at"], "name": data.get("name") or _("期满"), "role": "", "fields": []})
        elif kind == "gateway_decided" and data.get("label"):
            decided = _("%(name)s:%(label)s", name=data.get("name") or _("判断"), label=data["label"])
            steps.append({"at": ev["at"], "name": decided, "role": "", "fields": []})
        elif kind == "objection_filed":
            objections += 1
            steps.append({"at": ev["at"], "name": _("收到公示异议1件(内容由责任主体核实后答复)"), "role": "",
                          "fields": []})
        elif kind == "case_closed":
            steps.append({"at": ev["at"], "name": _("结束:%(end)s", end=data.get("name") or ""), "role": "",
                          "fields": []})
        elif kind == "case_cancelled":
            steps.append({"at": ev["at"], "name": _("已撤销"), "role": "", "fields": []})
    now = audit.db_time()
    items = session.execute(select(WorkItem.step_id, WorkItem.step_name, WorkItem.role_key, WorkItem.ready_at,
                                   WorkItem.due_at).where(WorkItem.case_id == case.id).order_by(WorkItem.id)).all()
    current = [{"step_id": w.step_id, "name": w.step_name, "role": role_zh(w.role_key) if w.role_key in roles else "",
                "since": w.ready_at, "due_at": w.due_at, "overdue": bool(w.due_at and w.due_at < now)} for w in items]
    timers = session.execute(select(TimerDue.node_id, TimerDue.due_at, TimerDue.task_id)
                             .where(TimerDue.case_id == case.id)).all()
    counts = engine_objections.notice_counts(session, [case.id])
    notices = []
    for t in timers:
        node = d.nodes.get(t.node_id)
        if node is not None and node.notice_for and case.status == cases.RUNNING:
            step = d.steps.get(node.notice_for)
            notices.append({"name": node.name, "step": step.name if step else "", "due_at": t.due_at,
                            "days_left": max(math.ceil((t.due_at - now).total_seconds() / 86400), 0),
                            "what": (step.disclosure or {}).get("what", "") if step else "",
                            "objections": counts.get((case.id, t.task_id), 0)})
    nodes, flows = reads.path_of(d, history)
    here = tuple(sorted({w["step_id"] for w in current} | {t.node_id for t in timers}))
    overdue = tuple(sorted(w["step_id"] for w in current if w["overdue"]))
    svg = diagram(case.procedure_version_id, d, tuple(sorted(nodes)), tuple(sorted(flows)), here, overdue)
    return {
        "code": cases.format_tracking_code(case.tracking_code), "raw_code": case.tracking_code,
        "title": public_title(session, d, case.id, case.title, history), "procedure_id": d.id,
        "procedure": d.name, "version": version.version if version else None,
        "org": org.name if org else "", "org_code": org.code if org else "", "status": case.status,
        "status_zh": cases.STATUS_ZH.get(case.status, case.status), "created_at": case.created_at,
        "closed_at": case.closed_at, "steps": steps, "current": current, "notices": notices,
        "objections": objections, "chain_head": case.audit_head, "chain_events": case.audit_seq, "svg": svg,
        "path": steplist.step_path(d, nodes, here, overdue),
    }


def case_json(page: dict) -> dict:
    def t(value):
        return audit.iso(value) if isinstance(value, datetime) else value

    return {
        "tracking_code": page["code"], "title": page["title"], "procedure_id": page["procedure_id"],
        "procedure": page["procedure"], "version": page["version"], "org": page["org"], "status": page["status"],
        "created_at": t(page["created_at"]), "closed_at": t(page["closed_at"]),
        "steps": [{"at": s["at"], "name": s["name"], "role": s["role"],
                   "fields": [{"label": label, "value": value} for label, value in s["fields"]]}
                  for s in page["steps"]],
        "current": [{"name": c["name"], "role": c["role"], "since": t(c["since"]), "due_at": t(c["due_at"]),
                     "overdue": c["overdue"]} for c in page["current"]],
        "notices": [{"name": n["name"], "step": n["step"], "due_at": t(n["due_at"]), "days_left": n["days_left"],
                     "objections": n["objections"]} for n in page["notices"]],
        "objections": page["objections"], "audit": {"head": page["chain_head"], "events": page["chain_events"]},
    }


def diagram(version_id: int, d: ProcedureDefinition, nodes: tuple, flows: tuple, current: tuple = (),
            overdue: tuple = ()) -> str | None:
    """The flowchart with the path travelled (cached: many cases share a path)."""
    return path_svg(d, nodes, flows, current, overdue)


# --- an objector's receipt -------------------------------------------------------------------------

def objection_page(session: Session, receipt_code: str) -> dict | None:
    """The objector's tracking page: received → verified → how it ended (no identity; the objection's
    own text, which only the holder of the receipt code sees here), or None for an unknown code."""
    o = engine_objections.track(session, receipt_code)
    if o is None:
        return None
    d = o.pop("definition")
    history = o.pop("history")
    o["title"] = public_title(session, d, o["case_id"], o["case_title"], history)
    o["verifier"] = role_zh(o["verifier_role"]) if o["verifier_role"] else ""
    now = audit.iso(audit.db_time())
    o["notice_over"] = bool(o["notice_due"]) and o["notice_due"] <= now or o["status"] != "on_notice"
    return o
