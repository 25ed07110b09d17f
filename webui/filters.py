"""Jinja filters: China time, role and category names, values shown to people."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import Flask, has_request_context

from engine.core import catalogue, clock

CHINA = timedelta(hours=8)


def china_time(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC timestamp (naive datetime or ISO text) in China time (UTC+8)."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = clock.to_utc(value)
        except ValueError:
            return value
    if not isinstance(value, datetime):
        return str(value)
    return (clock.to_utc(value) + CHINA).strftime(fmt)


def english_page() -> bool:
    """Whether the page being rendered is in English (the registries have English names)."""
    if not has_request_context():
        return False
    from .i18n import current

    return current() == "en"


def role_zh(key: Any) -> str:
    """The role's name for people: Chinese, or the registry's English name on an English page."""
    role = catalogue.roles().get(str(key or ""))
    if role is None:
        return str(key or "")
    return role.en if role.en and english_page() else role.zh


def category_zh(code: Any) -> str:
    """The category's name: Chinese, or the registry's English name on an English page."""
    cat = catalogue.categories().get(str(code or ""))
    if cat is None:
        return str(code or "")
    return cat.en if cat.en and english_page() else cat.zh


_KIND_EN = {"task": "Task", "meeting": "Meeting", "vote": "Vote", "approval": "Approval", "disclosure": "Notice",
            "supervision": "Supervision"}


def kind_zh(kind: Any) -> str:
    """A step kind's name for people (办理, 会议, 表决, 审批, 公示, 监督)."""
    from engine.render.narrative import KIND_ZH

    key = str(kind or "task")
    return _KIND_EN.get(key, "Task") if english_page() else KIND_ZH.get(key, "办理")


def zh(message: Any) -> str:
    """The Chinese half of an engine message written as “中文 / English”."""
    text = str(message or "")
    return text.split(" / ", 1)[0] if " / " in text else text


def calendar_warnings() -> list[str]:
    """Missing holiday calendars (this year, or next year late in the year), for administrators."""
    from engine.core.workdays import check_calendar

    english = english_page()
    return [w.en if english else w.zh for w in check_calendar()]


def en_label(item: Any) -> str:
    """A field's or option's label: the procedure's English on an English page where it has one."""
    if isinstance(item, dict):  # a form field the page itself adds (代办: on whose behalf)
        return str(item.get("label_en") or item.get("label") or "") if english_page() else str(item.get("label") or "")
    return (getattr(item, "label_en", "") or item.label) if english_page() else item.label


def en_name(item: Any) -> str:
    """A step's (or lane's) name: the procedure's English on an English page where it has one."""
    if isinstance(item, dict):  # a row of the step list (engine/render/steplist.py)
        return str(item.get("name_en") or item.get("name") or "") if english_page() else str(item.get("name") or "")
    return (getattr(item, "name_en", "") or item.name) if english_page() else item.name


def en_instructions(step: Any) -> str:
    return (getattr(step, "instructions_en", "") or step.instructions) if english_page() else step.instructions


def en_unit(unit: Any) -> str:
    if not english_page() or not unit:
        return str(unit or "")
    from engine.bpmn.english import english

    return english(unit, kind="units") or str(unit)


def en_term(text: Any, kind: str) -> str:
    """A name recorded in Chinese (a step of a task list) in the glossary's English on an English page."""
    if not english_page() or not text:
        return str(text or "")
    from engine.bpmn.english import english

    return english(text, kind=kind) or str(text)


def en_procedure(name: Any, procedure_id: Any) -> str:
    """A procedure's name: the library's English name on an English page where it has one."""
    if not english_page():
        return str(name or "")
    from engine.bpmn.english import procedure_name

    return procedure_name(str(procedure_id or "")) or str(name or "")


def register(app: Flask) -> None:
    app.jinja_env.filters.update(china_time=china_time, role_zh=role_zh, category_zh=category_zh, zh=zh, kind_zh=kind_zh,
                                 en_label=en_label, en_name=en_name, en_instructions=en_instructions, en_unit=en_unit,
                                 en_term=en_term, en_procedure=en_procedure)
    app.jinja_env.globals.update(categories=catalogue.categories, calendar_warnings=calendar_warnings)
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
