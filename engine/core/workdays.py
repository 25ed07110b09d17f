"""The working-day calendar of the mainland, and when a deadline ends.

Working days come from the `chinese-calendar` package (the State Council's holiday notices, with
调休 working weekends, from 2004 on) plus local overrides in ``processes/calendar.yaml`` (a year
whose notice the installed package does not have yet, or a local change); an override wins. A day in
a year that neither covers is counted Monday to Friday — never silently: :func:`calendar_warnings`
says so, and `xiaowei serve` (at start-up), `xiaowei tick` and the admin pages show it.

A deadline ends at the close of the office day in Beijing time (``XIAOWEI_OFFICE_CLOSE``, 17:30 by
default, :func:`office_close`); a limit in calendar days whose last day is a day off ends on the next
working day (《中华人民共和国民法典》第二百零三条: the last day of a period that is a statutory day off
is moved to the day after; where there are business hours, the period ends when business stops).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path

import yaml

CALENDAR = Path(__file__).resolve().parents[2] / "processes" / "calendar.yaml"
CHINA_OFFSET = timedelta(hours=8)
OFFICE_CLOSE_ENV = "XIAOWEI_OFFICE_CLOSE"  # HH:MM, Beijing time
DEFAULT_OFFICE_CLOSE = time(17, 30)
# From this many days before the end of a year, a missing calendar for the next year is warned about
# (limits of a few weeks started in the autumn end in the next year).
WARN_DAYS_BEFORE_YEAR_END = 92
log = logging.getLogger("xiaowei.calendar")


class CalendarError(ValueError):
    pass


# --------------------------------------------------------------------------------------------
# Sources


@lru_cache(maxsize=1)
def _package() -> tuple[frozenset[date], frozenset[date], frozenset[int]]:
    """(holidays, adjusted working days, years covered) of the installed chinese-calendar."""
    try:
        from chinese_calendar import constants
    except ImportError:  # pragma: no cover - a dependency; without it only the overrides count
        return frozenset(), frozenset(), frozenset()
    holidays = frozenset(constants.holidays)
    workdays = frozenset(constants.workdays)
    years = frozenset(d.year for d in holidays)
    return holidays, workdays, years


def package_version() -> str:
    try:
        from importlib.metadata import version

        return version("chinese_calendar")
    except Exception:  # pragma: no cover
        return ""


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


def load(path: Path = CALENDAR) -> tuple[frozenset[date], frozenset[date], frozenset[int]]:
    """(holidays, adjusted working days, years covered) of the local overrides file (read again when
    it changes: a year entered while the server runs counts from then on)."""
    try:
        stat = path.stat()
    except OSError:
        return frozenset(), frozenset(), frozenset()
    return _load(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _load(name: str, _mtime: int, _size: int) -> tuple[frozenset[date], frozenset[date], frozenset[int]]:
    path = Path(name)
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise CalendarError(f"{path.name}: 须为以年份为键的表 / expected years as keys")
    holidays: set[date] = set()
    workdays: set[date] = set()
    for year, entry in raw.items():
        entry = entry or {}
        for spec in entry.get("holidays") or []:
            holidays.update(_days(spec))
        for spec in entry.get("workdays") or []:
            workdays.update(_days(spec))
        for d in holidays | workdays:
            if d.year != int(year) and abs(d.year - int(year)) > 1:
                raise CalendarError(f"{d} 不属于 {year} 年 / {d} is not in {year}")
    if holidays & workdays:
        raise CalendarError(f"既是假日又是工作日 / both holiday and working day: {sorted(holidays & workdays)}")
    # A year counts as covered only when its entry lists its holidays (the notice was entered).
    years = frozenset(int(y) for y, entry in raw.items() if (entry or {}).get("holidays"))
    return frozenset(holidays), frozenset(workdays), years


def covered_years(path: Path = CALENDAR) -> frozenset[int]:
    """The years whose holiday arrangement is known (package or overrides)."""
    return _package()[2] | load(path)[2]


def is_known(day: date, path: Path = CALENDAR) -> bool:
    """Whether ``day``'s year has its holiday arrangement (else it is counted Monday to Friday)."""
    return day.year in covered_years(path)


def is_working_day(day: date, path: Path = CALENDAR) -> bool:
    holidays, workdays, _ = load(path)
    if day in workdays:
        return True
    if day in holidays:
        return False
    p_holidays, p_workdays, p_years = _package()
    if day.year in p_years:
        if day in p_workdays:
            return True
        if day in p_holidays:
            return False
    return day.weekday() < 5


def add_working_days(day: date, n: int, path: Path = CALENDAR) -> date:
    """The n-th working day after ``day``."""
    while n > 0:
        day += timedelta(days=1)
        if is_working_day(day, path):
            n -= 1
    return day


def next_working_day(day: date, path: Path = CALENDAR) -> date:
    """``day`` itself if it is a working day, else the first working day after it."""
    while not is_working_day(day, path):
        day += timedelta(days=1)
    return day


# --------------------------------------------------------------------------------------------
# When a deadline ends



def office_close() -> time:
    """The close of the office day, Beijing time: ``XIAOWEI_OFFICE_CLOSE`` (HH:MM), 17:30 by default
    (engine/settings.py; a value that does not parse keeps the default)."""
    from engine import settings

    return settings.current().office_close


def close_of(day: date) -> datetime:
    """The close of the office day ``day`` (a Beijing date) as naive UTC."""
    return datetime.combine(day, office_close()) - CHINA_OFFSET


def china_date(at: datetime) -> date:
    """The Beijing date of a naive UTC time."""
    return (at + CHINA_OFFSET).date()


def due_working_days(start: datetime, n: int, path: Path = CALENDAR) -> datetime:
    """``n`` working days after ``start`` (naive UTC): the close of the n-th working day after it."""
    return close_of(add_working_days(china_date(start), n, path))


def due_calendar_days(start: datetime, n: int, path: Path = CALENDAR) -> datetime:
    """``n`` calendar days after ``start``: the close of that day, or of the next working day when it
    is a day off (民法典第二百零三条)."""
    return close_of(next_working_day(china_date(start) + timedelta(days=n), path))


# --------------------------------------------------------------------------------------------
# Is the calendar complete?


@dataclass(frozen=True)
class CalendarWarning:
    year: int
    zh: str
    en: str

    def __str__(self) -> str:
        return f"{self.zh} / {self.en}"


def calendar_warnings(today: date, path: Path = CALENDAR) -> list[CalendarWarning]:
    """What administrators must know about the calendar on ``today`` (a Beijing date): this year's
    arrangement missing (always), next year's missing (in the last months of the year)."""
    years = covered_years(path)
    found = []
    wanted = [today.year]
    if (date(today.year, 12, 31) - today).days < WARN_DAYS_BEFORE_YEAR_END:
        wanted.append(today.year + 1)
    for year in wanted:
        if year in years:
            continue
        found.append(CalendarWarning(
            year,
            f"{year}年的节假日安排尚未录入:在录入之前,{year}年的工作日只按周一至周五计算,春节、国庆等假日和调休"
            f"上班日都不会计入,跨入{year}年的办理时限和超期预警可能不准。国务院办公厅通知发布后,请升级"
            f" chinese-calendar 软件包(现为 {package_version() or '未安装'}),或在节假日配置"
            f"(processes/calendar.yaml)中补录{year}年的放假和调休日期。",
            f"the holiday arrangement of {year} is missing: working days of {year} are counted Monday to "
            f"Friday until it is added (upgrade chinese-calendar or add {year} to processes/calendar.yaml)"))
    return found


_logged: set[tuple[date, int]] = set()


def check_calendar(today: date | None = None, path: Path = CALENDAR) -> list[CalendarWarning]:
    """:func:`calendar_warnings` for today (Beijing), each logged once a day (start-up and tick)."""
    if today is None:
        from . import clock

        today = china_date(clock.now().replace(tzinfo=None))
    found = calendar_warnings(today, path)
    for warning in found:
        if (today, warning.year) not in _logged:
            _logged.add((today, warning.year))
            log.warning("%s", warning)
    return found
