"""Working days follow the holiday calendar: weekends, public holidays, adjusted working days (调休)."""

from datetime import date, datetime

import pytest

from engine.core import workdays
from engine.core.definitions import TimeLimit


def test_weekends_holidays_and_adjusted_working_days():
    assert workdays.is_working_day(date(2026, 3, 2))           # a Monday
    assert not workdays.is_working_day(date(2026, 3, 7))       # a Saturday
    assert not workdays.is_working_day(date(2026, 10, 5))      # 国庆节, a Monday
    assert workdays.is_working_day(date(2026, 10, 10))         # 调休: a Saturday worked
    assert not workdays.is_working_day(date(2027, 1, 2))       # a year not listed: weekends only
    assert workdays.is_working_day(date(2027, 1, 4))


def test_five_working_days_across_national_day():
    # Ready on Tuesday 29 Sep 2026, 10:00 China time: 30 Sep, (1–7 Oct holiday), 8, 9, 10 (Sat, worked), 12.
    start = datetime(2026, 9, 29, 2, 0)  # naive UTC
    assert TimeLimit.parse("5wd").due_from(start) == datetime(2026, 10, 12, 2, 0)
    # Calendar days and hours ignore the calendar.
    assert TimeLimit.parse("5d").due_from(start) == datetime(2026, 10, 4, 2, 0)
    assert TimeLimit.parse("48h").due_from(start) == datetime(2026, 10, 1, 2, 0)


def test_spring_festival_and_china_day_boundary():
    # 23:30 China time on Friday 13 Feb 2026 is 15:30 UTC the same day; next working days: 14 (Sat, worked), 24.
    start = datetime(2026, 2, 13, 15, 30)
    assert TimeLimit.parse("2wd").due_from(start) == datetime(2026, 2, 24, 15, 30)


def test_bad_calendar_is_refused(tmp_path):
    bad = tmp_path / "calendar.yaml"
    bad.write_text("2026:\n  holidays: [2026-10-01]\n  workdays: [2026-10-01]\n", encoding="utf-8")
    with pytest.raises(workdays.CalendarError):
        workdays.load(bad)
    bad.write_text("2026:\n  holidays: [2026-10-07..2026-10-01]\n", encoding="utf-8")
    with pytest.raises(workdays.CalendarError):
        workdays.load(bad)
