"""The working-day calendar (processes/calendar.yaml): weekends, public holidays, adjusted working days."""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import yaml

CALENDAR = Path(__file__).resolve().parents[2] / "processes" / "calendar.yaml"


class CalendarError(ValueError):
    pass


def _days(spec) -> list[date]:
    if isinstance(spec, date):
        return [spec]
    text = str(spec)
    first, _, last = text.partition("..")
    start = date.fromisoformat(first.strip())
    end = date.fromisoformat(last.strip()) if last else start
    if end < start or (end - start).days > 31:
        raise CalendarError(f"日期范围有误 / bad date range: {text}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


@lru_cache(maxsize=4)
def load(path: Path = CALENDAR) -> tuple[frozenset[date], frozenset[date], frozenset[int]]:
    """(holidays, adjusted working days, years covered) from the calendar file."""
    if not path.exists():
        return frozenset(), frozenset(), frozenset()
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    holidays: set[date] = set()
    workdays: set[date] = set()
    for year, entry in raw.items():
        for spec in entry.get("holidays") or []:
            holidays.update(_days(spec))
        for spec in entry.get("workdays") or []:
            workdays.update(_days(spec))
        for d in holidays | workdays:
            if d.year != int(year) and abs(d.year - int(year)) > 1:
                raise CalendarError(f"{d} 不属于 {year} 年 / {d} is not in {year}")
    if holidays & workdays:
        raise CalendarError(f"既是假日又是工作日 / both holiday and working day: {sorted(holidays & workdays)}")
    return frozenset(holidays), frozenset(workdays), frozenset(int(y) for y in raw)


def is_working_day(day: date, path: Path = CALENDAR) -> bool:
    holidays, workdays, _ = load(path)
    if day in workdays:
        return True
    if day in holidays:
        return False
    return day.weekday() < 5


def add_working_days(day: date, n: int, path: Path = CALENDAR) -> date:
    """The n-th working day after ``day``."""
    while n > 0:
        day += timedelta(days=1)
        if is_working_day(day, path):
            n -= 1
    return day
