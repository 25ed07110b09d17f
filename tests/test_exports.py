"""Excel downloads: every dashboard table, the heat map, the case search and the warnings list open
with openpyxl, have a bold frozen Chinese header row, store numbers as numbers with a number format,
and carry exactly the figures of the CSV download of the same table."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from supervision_helpers import build_history
from web_helpers import login
from webui.views.dashboard import CHARTS


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.text[:300]
    text = response.get_data().decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def _shown(cell) -> str:
    """A cell as Excel shows it under its number format (what the CSV writes)."""
    v, fmt = cell.value, cell.number_format
    if v is None:
        return ""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if fmt == "0%":
            return f"{v:.0%}"
        if fmt in ("0.00", "#,##0.00"):
            return f"{v:.2f}"
        if fmt == "0":
            return str(int(v))
        raise AssertionError(f"a number without a format: {v!r} {fmt!r}")
    return str(v)


def _xlsx(response):
    assert response.status_code == 200, response.text[:300]
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert ".xlsx" in response.headers["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    assert sheet.freeze_panes == "A2"
    assert all(c.font.bold for c in sheet[1])
    return sheet


def _same(sheet, rows: list[list[str]]) -> int:
    """The sheet holds the CSV's rows, cell for cell; the number of numeric cells."""
    numbers = 0
    assert sheet.max_row == len(rows)
    for r, row in enumerate(rows, start=1):
        for c, text in enumerate(row, start=1):
            cell = sheet.cell(row=r, column=c)
            assert _shown(cell) == ("" if text == "—" else text), (r, c, cell.value, text)
            numbers += isinstance(cell.value, (int, float))
    return numbers


@pytest.fixture
def history(xw, people, frozen):
    return build_history(xw, people, frozen)


def test_every_dashboard_table_as_excel_matches_its_csv(app, xw, people, history):
    client = login(app, people["township_discipline"])
    numbers = 0
    for chart in CHARTS:
        rows = _csv(client.get(f"/dashboard/{chart}.csv"))
        sheet = _xlsx(client.get(f"/dashboard/{chart}.xlsx"))
        assert any("\u4e00" <= ch <= "\u9fff" for ch in rows[0][0] + rows[0][1]), rows[0]  # Chinese headers
        numbers += _same(sheet, rows)
    assert numbers > 10  # counts, hours and rates are numbers in Excel, not text
    durations = load_workbook(io.BytesIO(client.get("/dashboard/durations.xlsx").get_data())).active
    assert durations.cell(row=2, column=6).number_format == "0.00"
    villages = load_workbook(io.BytesIO(client.get("/dashboard/villages.xlsx").get_data())).active
    assert villages.cell(row=2, column=villages.max_column).number_format == "0%"
    heat_rows = _csv(client.get("/dashboard/heat/V-DEC-01?format=csv"))
    _same(_xlsx(client.get("/dashboard/heat/V-DEC-01?format=xlsx")), heat_rows)
    assert client.get("/dashboard/nothing.xlsx").status_code == 404


def test_case_search_and_warnings_as_excel(app, xw, people, history):
    client = login(app, people["township_discipline"])
    rows = _csv(client.get("/cases/export.csv?scope=all"))
    assert rows[0][0] == "查询码" and len(rows) == 1 + 4  # the four cases of the history
    _same(_xlsx(client.get("/cases/export.xlsx?scope=all")), rows)
    only = _csv(client.get("/cases/export.csv?scope=all&procedure=B-FIN-01"))
    assert len(only) == 2 and only[1][2] == "B-FIN-01"
    assert client.get("/cases/export.csv?scope=all&amount_min=abc").status_code == 422
    warnings = _csv(client.get("/warnings/export.csv"))
    assert warnings[0][:3] == ["编号", "颜色", "规则"] and len(warnings) >= 3
    assert any("宏达建筑有限公司" in " ".join(r) for r in warnings[1:])
    _same(_xlsx(client.get("/warnings/export.xlsx")), warnings)
    red = _csv(client.get("/warnings/export.csv?severity=red"))
    assert len(red) == 2 and red[1][1] == "红"
    assert client.get("/warnings/export.pdf").status_code == 404
    cadre = login(app, people["handler"])
    assert cadre.get("/warnings/export.xlsx").status_code == 403
