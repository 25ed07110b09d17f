"""Downloads of tables: the same rows as CSV (UTF-8 with BOM, so Excel reads the Chinese) and as Excel
(.xlsx through openpyxl: the header row bold and frozen, columns sized to their text, numbers stored
as numbers with a number format — counts, amounts in 元, hours, rates as percentages).

A row is a list of cells; a cell is text, an int, a float, a :class:`~decimal.Decimal` (money), or a
:class:`Cell` that says how to show a number (:func:`pct`, :func:`hours`). The CSV shows each cell as
the Excel file formats it, so the two carry the same figures."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Sequence
from urllib.parse import quote

from flask import Response

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Cell:
    """A number with its format: ``value`` as stored in Excel, ``text`` as shown (and written to CSV)."""

    value: float | int | None
    number_format: str
    text: str


def pct(value: float | None) -> Cell:
    """A rate (0.75 → "75%"); None: no figure ("—")."""
    if value is None:
        return Cell(None, "0%", "—")
    return Cell(float(value), "0%", f"{value:.0%}")


def hours(value: float) -> Cell:
    return Cell(round(float(value), 2), "0.00", f"{value:.2f}")


def text_of(cell: Any) -> str:
    if isinstance(cell, Cell):
        return cell.text
    if isinstance(cell, bool):
        return "是" if cell else "否"
    if isinstance(cell, Decimal):
        return f"{cell:.2f}"
    if isinstance(cell, float):
        return f"{cell:.2f}"
    if isinstance(cell, datetime):
        return cell.strftime("%Y-%m-%d %H:%M")
    return "" if cell is None else str(cell)


def _disposition(filename: str) -> str:
    ascii_name = filename.encode("ascii", "ignore").decode() or "data"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def csv_response(rows: Sequence[Sequence[Any]], filename: str) -> Response:
    """CSV in UTF-8 with a byte-order mark (Excel then reads the Chinese correctly)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows([[text_of(c) for c in row] for row in rows])
    response = Response(("\ufeff" + buffer.getvalue()).encode("utf-8"), mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = _disposition(filename)
    return response


def xlsx_bytes(rows: Sequence[Sequence[Any]], title: str = "Sheet") -> bytes:
    """One worksheet: the first row the header (bold, frozen), numbers as numbers with formats."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    # sheet names: at most 31 characters, none of []:*?/\
    sheet.title = "".join(ch for ch in title if ch not in "[]:*?/\\")[:31] or "Sheet"
    widths: dict[int, float] = {}
    for r, row in enumerate(rows, start=1):
        for c, cell in enumerate(row, start=1):
            target = sheet.cell(row=r, column=c)
            if isinstance(cell, Cell):
                target.value = cell.value
                target.number_format = cell.number_format
            elif isinstance(cell, bool):
                target.value = text_of(cell)
            elif isinstance(cell, Decimal):
                target.value = float(cell)
                target.number_format = "#,##0.00"
            elif isinstance(cell, int):
                target.value = cell
                target.number_format = "0"
            elif isinstance(cell, float):
                target.value = cell
                target.number_format = "0.00"
            elif isinstance(cell, datetime):
                target.value = cell
                target.number_format = "yyyy-mm-dd hh:mm"
            else:
                target.value = "" if cell is None else str(cell)
            shown = text_of(cell)
            widths[c] = max(widths.get(c, 0), sum(2 if ord(ch) > 0x2E7F else 1.1 for ch in shown) + 2)
    header = Font(bold=True)
    fill = PatternFill("solid", fgColor="E8EEF7")
    for cell in sheet[1] if rows else ():
        cell.font, cell.fill = header, fill
        cell.alignment = Alignment(vertical="center", wrap_text=True)
    sheet.freeze_panes = "A2"
    for c, width in widths.items():
        sheet.column_dimensions[get_column_letter(c)].width = min(max(width, 6), 60)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xlsx_response(rows: Sequence[Sequence[Any]], filename: str, title: str = "Sheet") -> Response:
    response = Response(xlsx_bytes(rows, title), mimetype=XLSX)
    response.headers["Content-Disposition"] = _disposition(filename)
    return response


def download(rows: Sequence[Sequence[Any]], name: str, fmt: str, title: str = "Sheet") -> Response:
    """``name``.csv or ``name``.xlsx."""
    if fmt == "xlsx":
        return xlsx_response(rows, f"{name}.xlsx", title)
    return csv_response(rows, f"{name}.csv")
