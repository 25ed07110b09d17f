"""Working days follow the holiday calendar (chinese-calendar plus processes/calendar.yaml overrides);
deadlines end at the close of the office day in Beijing time; a missing year is warned about."""

from datetime import date, datetime, time, timedelta

import chinese_calendar
import pytest

from engine.core import workdays
from engine.core.definitions import TimeLimit


def test_weekends_holidays_and_adjusted_working_days():
    assert workdays.is_working_day(date(2026, 3, 2))           # a Monday
    assert not workdays.is_working_day(date(2026, 3, 7))       # a Saturday
    assert not workdays.is_working_day(date(2026, 10, 5))      # 国庆节, a Monday
    assert workdays.is_working_day(date(2026, 10, 10))         # 调休: a Saturday worked
    assert not workdays.is_working_day(date(2025, 10, 8))      # 2025 国庆 + 中秋: earlier years come from the package
    assert workdays.is_working_day(date(2025, 9, 28))          # a Sunday worked in 2025


def test_working_days_agree_with_chinese_calendar_from_october_to_february():
    """2026-10-01 .. 2027-02-28: every day the package knows agrees; a day it does not know is in a
    year the calendar reports as missing (counted Monday to Friday), never silently."""
    day, compared, unknown = date(2026, 10, 1), 0, []
    while day <= date(2027, 2, 28):
        try:
            expected = chinese_calendar.is_workday(day)
        except NotImplementedError:
            unknown.append(day)
        else:
            assert workdays.is_working_day(day) is expected, day
            compared += 1
        day += timedelta(days=1)
    assert compared >= 92  # October to December 2026 at least
    for missing in unknown:
        assert not workdays.is_known(missing)
        assert workdays.is_working_day(missing) is (missing.weekday() < 5)
    if unknown:
        years = {w.year for w in workdays.calendar_warnings(date(2026, 12, 1))}
        assert {d.year for d in unknown} <= years


def test_a_missing_year_warns(tmp_path):
    overrides = tmp_path / "calendar.yaml"
    overrides.write_text("{}\n", encoding="utf-8")
    last = max(workdays.covered_years(overrides))
    # Early in the last known year nothing is missing yet; from October next year's calendar is.
    assert workdays.calendar_warnings(date(last, 3, 1), overrides) == []
    found = workdays.calendar_warnings(date(last, 12, 1), overrides)
    assert [w.year for w in found] == [last + 1]
    assert f"{last + 1}年的节假日安排尚未录入" in found[0].zh and "周一至周五" in found[0].zh
    # In a year that is itself missing, it is warned about at any time.
    assert [w.year for w in workdays.calendar_warnings(date(last + 1, 3, 1), overrides)] == [last + 1]
    # Entering the year's notice as an override ends the warning.
    overrides.write_text(f"{last + 1}:\n  holidays: [{last + 1}-01-01]\n", encoding="utf-8")
    assert workdays.calendar_warnings(date(last, 12, 1), overrides) == []
    assert not workdays.is_working_day(date(last + 1, 1, 1), overrides)


def test_check_calendar_logs_once_a_day(tmp_path, caplog):
    overrides = tmp_path / "calendar.yaml"
    overrides.write_text("{}\n", encoding="utf-8")
    year = max(workdays.covered_years(overrides)) + 1
    with caplog.at_level("WARNING", logger="xiaowei.calendar"):
        workdays.check_calendar(date(year, 5, 4), overrides)
        workdays.check_calendar(date(year, 5, 4), overrides)
    assert len([r for r in caplog.records if f"{year}年的节假日安排尚未录入" in r.getMessage()]) == 1


def test_overrides_win_over_the_package(tmp_path):
    overrides = tmp_path / "calendar.yaml"
    overrides.write_text("2026:\n  holidays: [2026-03-02]\n  workdays: [2026-03-07]\n", encoding="utf-8")
    assert not workdays.is_working_day(date(2026, 3, 2), overrides)
    assert workdays.is_working_day(date(2026, 3, 7), overrides)


def test_five_working_days_across_national_day_end_at_office_close():
    # Ready on Tuesday 29 Sep 2026, 10:00 China time: 30 Sep, (1–7 Oct holiday), 8, 9, 10 (Sat, worked), 12.
    start = datetime(2026, 9, 29, 2, 0)  # naive UTC
    assert TimeLimit.parse("5wd").due_from(start) == datetime(2026, 10, 12, 9, 30)  # 17:30 China time
    # Calendar days end at office close too; 4 Oct is a holiday, so the limit moves to 8 Oct (民法典第二百零三条).
    assert TimeLimit.parse("5d").due_from(start) == datetime(2026, 10, 8, 9, 30)
    assert TimeLimit.parse("1d").due_from(start) == datetime(2026, 9, 30, 9, 30)
    # Hours count from the start.
    assert TimeLimit.parse("48h").due_from(start) == datetime(2026, 10, 1, 2, 0)


def test_no_deadline_at_odd_hours():
    """A step ready at 03:33 China time is due at 17:30 of its last day, not at 03:33."""
    start = datetime(2026, 3, 1, 19, 33)  # 03:33 on Monday 2 March, China time
    due = TimeLimit.parse("5wd").due_from(start)
    assert due == datetime(2026, 3, 9, 9, 30)
    assert (due + timedelta(hours=8)).strftime("%H:%M") == "17:30"


def test_spring_festival_and_china_day_boundary():
    # 23:30 China time on Friday 13 Feb 2026 is 15:30 UTC the same day; next working days: 14 (Sat, worked), 24.
    start = datetime(2026, 2, 13, 15, 30)
    assert TimeLimit.parse("2wd").due_from(start) == datetime(2026, 2, 24, 9, 30)


def test_office_close_is_configurable(monkeypatch):
    from engine import settings

    start = datetime(2026, 9, 29, 2, 0)
    monkeypatch.setenv(workdays.OFFICE_CLOSE_ENV, "18:00")
    settings.reload()
    try:
        assert TimeLimit.parse("5wd").due_from(start) == datetime(2026, 10, 12, 10, 0)
        monkeypatch.setenv(workdays.OFFICE_CLOSE_ENV, "half past five")
        settings.reload()  # a value that does not parse keeps the default (a typo never stops the server)
        assert workdays.office_close() == time(17, 30)
    finally:
        monkeypatch.delenv(workdays.OFFICE_CLOSE_ENV)
        settings.reload()


def test_bad_calendar_is_refused(tmp_path):
    bad = tmp_path / "calendar.yaml"
    bad.write_text("2026:\n  holidays: [2026-10-01]\n  workdays: [2026-10-01]\n", encoding="utf-8")
    with pytest.raises(workdays.CalendarError):
        workdays.load(bad)
    bad.write_text("2026:\n  holidays: [2026-10-07..2026-10-01]\n", encoding="utf-8")
    with pytest.raises(workdays.CalendarError):
        workdays.load(bad)


def test_tick_and_admin_pages_warn_about_a_missing_year(xw, people, frozen, app, monkeypatch):
    from conftest import add_user
    from web_helpers import login

    year = max(workdays.covered_years()) + 1
    frozen.set(f"{year - 1}-12-01T02:00:00+00:00")
    result = xw.tick()
    assert any(f"{year}年的节假日安排尚未录入" in w for w in result["calendar_warnings"])
    admin = add_user(xw, "calendar_admin", "township_staff@SFZ")
    page = login(app, admin).get("/admin/params")
    assert page.status_code == 200 and f"{year}年的节假日安排尚未录入" in page.text
    frozen.set(f"{year - 1}-03-02T02:00:00+00:00")
    assert "calendar_warnings" not in xw.tick()
