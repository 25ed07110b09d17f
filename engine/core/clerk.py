"""What a clerk checks on a submitted form beyond each field's own type: dates that make sense in
the case, and the evidence a step must keep. Every problem is reported at once, keyed by the field
it is about (``attachments`` for evidence), in Chinese.

Date fields say what they record (``xw:field dateRule``):
- ``act`` (default): the date something was done in this case — a meeting, a signature, a payment.
  Not in the future, not before the case began, and not before the end of a notice period that had
  to run first (implementation after the resolution's 公示). A disclosure's ``notice_start`` is not
  before the act it discloses (the latest act of the case).
- ``planned``: a date that may lie ahead (a lease's end) — only not before the case began.
- ``record``: a fact from before the case (when an asset was acquired) — only not in the future.
- ``observed``: what was seen to happen in this case and must be told as it was, even when it broke
  the chart (a notice taken down before its period ended): not in the future, not before the case
  began; the warning rules, not the form, judge it against the notice period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, Mapping

from .definitions import CHINA_OFFSET, Step

# Workflow data kept for these checks (so a completion reads no extra rows).
LAST_ACT_KEY = "xw_last_act"  # {"step", "name", "label", "date"}: the latest act date of the case
NOTICE_END_KEY = "xw_notice_end"  # {"step", "name", "date"}: the latest notice period that ended


@dataclass(frozen=True)
class Facts:
    """What the checks compare with: today and the case's start (China dates), the latest act and
    the latest ended notice period (from the workflow data)."""

    today: date
    case_start: date
    last_act: Mapping[str, Any] | None = None
    notice_end: Mapping[str, Any] | None = None


def china_date(at: datetime) -> date:
    """The China calendar date of a naive UTC (or aware) datetime."""
    if at.tzinfo is not None:
        at = at.astimezone(timezone.utc).replace(tzinfo=None)
    return (at + CHINA_OFFSET).date()


def _as_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def check(step: Step, values: Mapping[str, Any], facts: Facts, files: list | None) -> dict[str, str]:
    """Problems of a submission that passed its fields' own checks, by field name."""
    errors: dict[str, str] = {}
    for f in step.fields:
        if f.type not in ("date", "datetime") or values.get(f.name) in (None, ""):
            continue
        day = _as_date(values[f.name])
        if day is None:
            continue
        problems = []
        if f.date_rule != "planned" and day > facts.today:
            problems.append(f"“{f.label}”{day.isoformat()}晚于今天({facts.today.isoformat()}),不能填写将来的日期")
        if f.date_rule != "record" and day < facts.case_start:
            problems.append(f"“{f.label}”{day.isoformat()}早于本事项发起日期({facts.case_start.isoformat()})")
        if f.date_rule == "act" and facts.notice_end:
            ended = _as_date(facts.notice_end.get("date"))
            if ended is not None and day < ended and f.name != "notice_start":
                problems.append(f"“{f.label}”{day.isoformat()}早于“{facts.notice_end.get('name', '')}”公示期满日期"
                                f"({ended.isoformat()}):须公示期满后办理")
        if f.name == "notice_start" and step.kind == "disclosure" and facts.last_act:
            act = _as_date(facts.last_act.get("date"))
            if act is not None and day < act:
                problems.append(f"公示开始日期{day.isoformat()}早于所公示事项的日期:"
                                f"“{facts.last_act.get('name', '')}”{facts.last_act.get('label', '')}{act.isoformat()}")
        if problems:
            errors[f.name] = ";".join(problems)
    if step.evidence_required and not files:
        errors["attachments"] = f"请上传本步骤须留存的材料:{step.evidence or '相关材料'}(照片、扫描件或 PDF)"
    return errors


def latest_act(step: Step, values: Mapping[str, Any]) -> dict | None:
    """The latest act date of a submission (for the next disclosure's check), if it has one."""
    best: tuple[date, str] | None = None
    for f in step.fields:
        if f.type in ("date", "datetime") and f.date_rule == "act":
            day = _as_date(values.get(f.name))
            if day is not None and (best is None or day > best[0]):
                best = (day, f.label)
    if best is None:
        return None
    return {"step": step.id, "name": step.name, "label": best[1], "date": best[0].isoformat()}
