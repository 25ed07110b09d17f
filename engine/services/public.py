"""The public side's engine rules: what of a case may be shown to anyone, and 码上举报.

**The rule.** A public page shows a form value only when its field is marked ``public="true"``,
and a value of a personal type (``person``, ``idnumber``, ``phone``) only masked by
:func:`engine.forms.mask` (张*明, 3302**********1234, 138****5678). One listed exception: the
subsidy list (补贴去哪了) names each welfare recipient and id number masked, public field or not,
as welfare disclosure does on paper. Nothing else of a case's data reaches a public page: not
other private fields, not gateway inputs, not audit event details, not the text, name or phone of
an objection or a report (an objection is shown as “received”, and the responsible role's public
``objection_reply`` answers it).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Iterable

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.core import attachments, audit, cases, forms, privacy
from engine.core.definitions import ProcedureDefinition
from engine.core.directory import get_org
from engine.core.errors import InvalidData
from storage.models import Blob, Organization, PublicSubmission

REPORT_PROCEDURE = "T-SUP-01"  # 码上举报受理与办理, run by the township discipline office
REPORT_MAX_FILES = 5
REPORT_TOPICS = {"funds": "资金财务", "project": "工程项目", "welfare": "惠民补贴", "assets": "集体资产资源",
                 "conduct": "干部作风", "other": "其他"}
# 三务公开: which of the three affairs a category's disclosures belong to.
AFFAIRS = {"HR": "党务", "FIN": "财务", "PUR": "财务", "AST": "财务"}
AFFAIRS_ORDER = ("党务", "村务", "财务")


def affair_of(category: str) -> str:
    return AFFAIRS.get(category, "村务")


def public_value(f: forms.Field | None, value: Any) -> str | None:
    """The text a public page may show for ``value`` of field ``f``, or None when it must not appear."""
    if f is None or value is None or value == "" or not f.public:
        return None
    if f.type in forms.PERSONAL_TYPES:
        return forms.mask(f.type, value)
    if isinstance(value, bool) or f.type == "boolean":
        truthy = value if isinstance(value, bool) else str(value).lower() in ("true", "1")
        return "是" if truthy else "否"
    if f.type == "choice":
        return next((o.label for o in f.options if o.value == str(value)), str(value))
    if f.type == "money":
        try:
            return f"{Decimal(str(value)):,.2f} 元"
        except Exception:  # noqa: BLE001 - shown as given
            return str(value)
    if f.unit:
        return f"{value} {f.unit}"
    return str(value)


def public_fields(d: ProcedureDefinition, step_id: str, data: dict) -> list[tuple[str, str]]:
    """(label, shown value) of a completed step's data under the rule above, in form order."""
    step = d.steps.get(step_id)
    if step is None:
        return []
    shown = []
    for f in step.fields:
        text = public_value(f, data.get(f.name))
        if text is not None:
            shown.append((f.label, text))
    return shown


def private_values(d: ProcedureDefinition, events: Iterable[dict]) -> set[str]:
    """Every non-public, non-personal text value a case's events carry (a title equal to one of
    them is not shown in public)."""
    fields = d.fields_by_name()
    found: set[str] = set()
    for ev in events:
        data = ev.get("data") or {}
        values = dict(data.get("initial") or {}) if ev.get("type") == "case_started" else dict(data.get("data") or {})
        for name, value in values.items():
            f = fields.get(name)
            if f is not None and not f.public and value not in (None, ""):
                found.add(str(value).strip()[:200])
    return found


def personal_values(d: ProcedureDefinition, events: Iterable[dict]) -> set[str]:
    """The personal values (names, phones, ID numbers) a case's events carry."""
    fields = d.fields_by_name()
    found: set[str] = set()
    for ev in events:
        data = ev.get("data") or {}
        values = dict(data.get("initial") or {}) if ev.get("type") == "case_started" else dict(data.get("data") or {})
        for name, value in values.items():
            f = fields.get(name)
            if f is not None and f.type in forms.PERSONAL_TYPES and value not in (None, ""):
                found.add(str(value).strip())
        proxy = data.get("on_behalf_of")
        if isinstance(proxy, dict) and proxy.get("name"):
            found.add(str(proxy["name"]).strip())
    return found


_ID_IN_TEXT = re.compile(r"(?<![0-9])[1-9][0-9]{5}(?:19|20)[0-9]{9}[0-9Xx](?![0-9])")
_PHONE_IN_TEXT = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


def concerns_a_person(d: ProcedureDefinition) -> bool:
    """A procedure about one person or household (低保, 调解, 信访, 证明…): its first step, the
    application, asks for a private person."""
    first = first_steps(d)
    return any(f.type == "person" and not f.public for sid in first for f in d.steps[sid].fields)


def first_steps(d: ProcedureDefinition) -> list[str]:
    """The user tasks reachable from the start without passing another user task."""
    seen, found, stack = set(), [], list(d.start_ids)
    while stack:
        nid = stack.pop()
        if nid in seen:
            continue
        seen.add(nid)
        if nid in d.steps:
            found.append(nid)
            continue
        node = d.nodes.get(nid)
        if node is not None:
            stack.extend(d.flows[f].target for f in node.outgoing if f in d.flows)
    return found


def mask_title(d: ProcedureDefinition, title: str, personal: Iterable[str] = ()) -> str:
    """A case title as the public may read it. The title people type is public, but what they type
    into it may not be: ID numbers and mobile numbers are masked, and so is any personal value the
    case holds (a name in a person field). A procedure about one person shows only its own name,
    since a name typed into the title ("王阿婆低保申请") cannot be told from other words."""
    text = (title or "").strip()
    if not text or text == d.name or concerns_a_person(d):
        return d.name
    text = _ID_IN_TEXT.sub(lambda m: forms.mask("idnumber", m.group(0)), text)
    text = _PHONE_IN_TEXT.sub(lambda m: forms.mask("phone", m.group(0)), text)
    for value in sorted({v.strip() for v in personal if v and len(v.strip()) >= 2}, key=len, reverse=True):
        text = text.replace(value, forms.mask("person", value))
    return text


# --- 码上举报 -------------------------------------------------------------------------------

def report_township(session: Session, org_code: str) -> tuple[Organization, Organization]:
    """(the village or community reported about, the township whose discipline office handles it)."""
    org = get_org(session, org_code)
    if org.kind not in ("village", "community"):
        raise InvalidData("请从村(社区)公开页举报 / reports are filed from a village or community board",
                          {"org": org.code})
    township = session.get(Organization, org.parent_id) if org.parent_id else None
    if township is None or township.kind != "township":
        raise InvalidData(f"{org.name}没有所属镇(街道) / {org.code} has no township", {"org": org.code})
    return org, township


def store_public_files(session: Session, files: list[tuple[str | None, bytes]]) -> list[dict]:
    """Check (like every upload: content sniffed, extension agreeing, size limit) and store the
    photos of a report; their references. All or none."""
    if len(files) > REPORT_MAX_FILES:
        raise InvalidData(f"最多上传{REPORT_MAX_FILES}张照片 / at most {REPORT_MAX_FILES} files",
                          {attachments.FIELD: f"最多上传{REPORT_MAX_FILES}张照片"})
    checked = [(attachments.check(content, name), content) for name, content in files]
    refs = []
    for (media_type, name), content in checked:
        digest = hashlib.sha256(content).hexdigest()
        if session.scalar(select(Blob.sha256).where(Blob.sha256 == digest)) is None:
            try:
                with session.begin_nested():
                    session.add(Blob(sha256=digest, size=len(content), media_type=media_type, content=content,
                                     created_at=audit.db_time(), created_by=cases.PUBLIC_ACTOR))
                    session.flush()
            except IntegrityError:
                pass
        refs.append({"sha256": digest, "name": name, "size": len(content), "type": media_type})
    return refs


def file_report(session: Session, org_code: str, text: str, *, topic: str, name: str | None = None,
                phone: str | None = None, files: list[tuple[str | None, bytes]] | None = None) -> dict:
    """Start a T-SUP-01 case at the township of ``org_code`` as the public. The text and photos are
    private; the name and phone are sealed (only the discipline staff who handle it know them); the
    tracking code follows the case."""
    org, township = report_township(session, org_code)
    text = str(text or "").strip()
    if len(text) < 10:
        raise InvalidData("请写明举报内容(至少10个字) / describe the problem in at least 10 characters",
                          {"report_text": "请写明举报内容(至少10个字)"})
    if topic not in REPORT_TOPICS:
        raise InvalidData("请选择问题类别 / choose a topic", {"topic": "请选择问题类别"})
    clean_name = str(name or "").strip()
    clean_phone = str(phone or "").strip().replace(" ", "")
    if len(clean_name) > 50 or any(ord(ch) < 32 for ch in clean_name):
        raise InvalidData("姓名不能超过50字 / at most 50 characters", {"reporter_name": "姓名不能超过50字"})
    if clean_phone:
        try:
            clean_phone = forms.coerce(forms.Field("reporter_phone", "举报人电话", "phone"), clean_phone)
        except ValueError as exc:
            raise InvalidData(str(exc), {"reporter_phone": str(exc)}) from None
    refs = store_public_files(session, list(files or []))
    # The reporter's name and phone stay out of the hashed trail (engine.privacy): the case_started
    # event holds a salted commitment, the discipline staff who handle the report read the identity.
    sealed = privacy.seal(clean_name, clean_phone)
    data = {"title": f"码上举报·{org.name}", "report_text": text, "about_org": org.name, "topic": topic}
    public = {"channel": "码上举报", "about": org.code, "attachments": refs, "identity": privacy.event_marker(sealed)}
    case = cases.start_case(session, REPORT_PROCEDURE, township.code, cases.PUBLIC_ACTOR, data, public=public)
    privacy.store(session, case.id, 1, "report", sealed)  # case_started is the case's first event
    return {"case_id": case.id, "tracking_code": cases.format_tracking_code(case.tracking_code),
            "township": township.name}


# --- the hourly limit of public submissions (objections, reports) ----------------------------------
def reserve_submission(session: Session, nonce: str, key: str, limit: int) -> str | None:
    """Use a public form's single-use stamp and take one of the sender's submissions this hour,
    atomically (two single-statement upserts in one transaction): "used" when the stamp was used
    before, "limited" when the sender is over the limit, None to go ahead."""
    from engine.core import limits

    if not limits.use_stamp(session, nonce):
        return "used"
    if not limits.take(session, key, limit):
        return "limited"
    return None


def release_submission(session: Session, key: str) -> None:
    """The engine refused a submission's content: it does not count against the sender."""
    from engine.core import limits

    limits.give_back(session, key)


def submissions_since(session: Session, bucket: str, kind: str, since: datetime) -> int:
    """How many submissions of ``kind`` came from one address bucket (a keyed hash of the address) since."""
    return session.scalar(select(func.count()).select_from(PublicSubmission)
                          .where(PublicSubmission.bucket == bucket, PublicSubmission.kind == kind,
                                 PublicSubmission.at >= since)) or 0


def count_submission(session: Session, bucket: str, kind: str, now: datetime) -> None:
    """Count one submission (and forget those older than a day)."""
    session.execute(delete(PublicSubmission).where(PublicSubmission.at < now - timedelta(days=1)))
    session.add(PublicSubmission(bucket=bucket, kind=kind, at=now))
