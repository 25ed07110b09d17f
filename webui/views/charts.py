"""Server-rendered SVG charts (no JavaScript: the CSP forbids scripts): horizontal bars, stacked
horizontal bars and a monthly column-and-line trend. Every chart is a ``viewBox`` drawing 360 units
wide that scales to its container, with one row per item so that long Chinese labels stay readable
on a phone; bars carry ``<title>`` tooltips and the chart an accessible name."""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

from markupsafe import Markup, escape

from webui.i18n import gettext as _

WIDTH = 360
PAD = 8
COLOURS = {"red": "#c62828", "yellow": "#e08a00", "blue": "#1e6fd9", "green": "#2e7d32", "grey": "#8a94a6",
           "teal": "#00897b", "orange": "#ef6c00", "purple": "#6a1b9a"}


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _svg(height: float, title: str, body: list[str], cls: str) -> Markup:
    t = escape(title)
    return Markup(f'<svg class="chart {cls}" viewBox="0 0 {WIDTH} {_n(height)}" width="100%" role="img" '
                  f'aria-label="{t}" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif">'
                  f'<title>{t}</title>{"".join(body)}</svg>')


def _empty(title: str) -> Markup:
    note = escape(_("暂无数据"))
    return _svg(40, title, [f'<text x="{PAD}" y="24" font-size="12" fill="#667">{note}</text>'], "chart-empty")


def _width(label: str) -> float:
    """About how wide ``label`` is at font size 11–12: a Chinese character 12 units, a Latin one 6.5."""
    return sum(12 if ord(ch) > 0x2E7F else 6.5 for ch in label)


def _fit(label: str, limit: int = 22) -> str:
    if all(ord(ch) <= 0x2E7F for ch in label):  # Latin only (an English name): narrower letters, room for more
        limit = limit * 9 // 5
    return label if len(label) <= limit else label[: limit - 1] + "…"


def hbars(rows: Sequence[tuple[str, float]], *, title: str, colour: str = "#1e6fd9",
          fmt: Callable[[float], str] = lambda v: _n(v), max_value: float | None = None) -> Markup:
    """One labelled bar per row (label above, value at the bar's end)."""
    if not rows:
        return _empty(title)
    top = max_value or max((v for _, v in rows), default=0) or 1
    row_h, body = 34, []
    usable = WIDTH - 2 * PAD - 60
    for i, (label, value) in enumerate(rows):
        y = PAD + i * row_h
        w = max(usable * (value / top), 1.5 if value else 0)
        body.append(f'<text x="{PAD}" y="{_n(y + 11)}" font-size="12" fill="#223">{escape(_fit(label))}</text>')
        body.append(f'<rect x="{PAD}" y="{_n(y + 15)}" width="{_n(usable)}" height="12" rx="3" fill="#eef1f6"/>')
        body.append(f'<rect class="bar" x="{PAD}" y="{_n(y + 15)}" width="{_n(w)}" height="12" rx="3" fill="{colour}">'
                    f'<title>{escape(label)}:{escape(fmt(value))}</title></rect>')
        body.append(f'<text x="{_n(PAD + usable + 6)}" y="{_n(y + 25)}" font-size="12" fill="#223">'
                    f'{escape(fmt(value))}</text>')
    return _svg(PAD * 2 + row_h * len(rows), title, body, "chart-bars")


def stacked(rows: Sequence[tuple[str, dict]], series: Sequence[tuple[str, str, str]], *, title: str) -> Markup:
    """One stacked bar per row; ``series``: (key, label, colour) in stacking order, with a legend."""
    rows = [(label, parts) for label, parts in rows if sum(parts.get(k, 0) for k, _, _ in series)]
    if not rows:
        return _empty(title)
    top = max(sum(parts.get(k, 0) for k, _, _ in series) for _, parts in rows) or 1
    body, x = [], PAD
    for key, label, colour in series:  # the legend
        body.append(f'<rect x="{_n(x)}" y="{PAD}" width="10" height="10" rx="2" fill="{colour}"/>'
                    f'<text x="{_n(x + 14)}" y="{PAD + 9}" font-size="11" fill="#334">{escape(label)}</text>')
        x += 22 + _width(label)
    row_h, start, usable = 34, PAD + 20, WIDTH - 2 * PAD - 40
    for i, (label, parts) in enumerate(rows):
        y = start + i * row_h
        total = sum(parts.get(k, 0) for k, _, _ in series)
        body.append(f'<text x="{PAD}" y="{_n(y + 11)}" font-size="12" fill="#223">{escape(_fit(label))}</text>')
        cx = PAD
        for key, name, colour in series:
            v = parts.get(key, 0)
            if not v:
                continue
            w = usable * v / top
            body.append(f'<rect class="bar seg-{escape(key)}" x="{_n(cx)}" y="{_n(y + 15)}" width="{_n(w)}" '
                        f'height="12" fill="{colour}"><title>{escape(label)} · {escape(name)}:{_n(v)}</title></rect>')
            cx += w
        body.append(f'<text x="{_n(cx + 5)}" y="{_n(y + 25)}" font-size="12" fill="#223">{_n(total)}</text>')
    return _svg(start + row_h * len(rows) + PAD, title, body, "chart-stacked")


def trend(points: Sequence[dict], columns: Iterable[tuple[str, str, str]], line: tuple[str, str, str], *,
          title: str) -> Markup:
    """Monthly columns (side by side) with a line over them; ``points``: one dict per month with
    ``month`` and the values."""
    columns = list(columns)
    if not points:
        return _empty(title)
    keys = [k for k, _, _ in columns] + [line[0]]
    top = max(max((p.get(k, 0) for k in keys), default=0) for p in points) or 1
    left, bottom, height, legend = 26, 170, 140, 20
    plot_w = WIDTH - left - PAD
    step = plot_w / len(points)
    body, x = [], left
    for key, label, colour in [*columns, line]:
        shape = (f'<rect x="{_n(x)}" y="{PAD}" width="10" height="10" rx="2" fill="{colour}"/>' if key != line[0] else
                 f'<line x1="{_n(x)}" y1="{PAD + 5}" x2="{_n(x + 12)}" y2="{PAD + 5}" stroke="{colour}" stroke-width="2.5"/>')
        body.append(shape + f'<text x="{_n(x + 16)}" y="{PAD + 9}" font-size="11" fill="#334">{escape(label)}</text>')
        x += 26 + _width(label)
    for frac in (0, 0.5, 1):  # grid and scale
        y = bottom - height * frac + legend
        body.append(f'<line x1="{left}" y1="{_n(y)}" x2="{WIDTH - PAD}" y2="{_n(y)}" stroke="#e3e7ee" stroke-width="1"/>'
                    f'<text x="{left - 4}" y="{_n(y + 4)}" font-size="10" text-anchor="end" fill="#667">'
                    f'{_n(round(top * frac, 1))}</text>')
    col_w = max(step * 0.7 / max(len(columns), 1), 2)
    # month labels never touch: one every ``stride`` months so that each has its width and a gap
    widest = max(_width(month_label(p["month"])) * 10 / 12 for p in points) + 6
    stride = max(1, -(-int(widest) // max(int(step), 1)))
    line_pts = []
    for i, p in enumerate(points):
        x0 = left + i * step + step * 0.15
        for j, (key, label, colour) in enumerate(columns):
            v = p.get(key, 0)
            h = height * v / top
            body.append(f'<rect class="bar col-{escape(key)}" x="{_n(x0 + j * col_w)}" y="{_n(bottom - h + legend)}" '
                        f'width="{_n(col_w - 1)}" height="{_n(h)}" fill="{colour}">'
                        f'<title>{escape(p["month"])} {escape(label)}:{_n(v)}</title></rect>')
        line_pts.append((left + i * step + step / 2, bottom - height * p.get(line[0], 0) / top + legend))
        if (len(points) - 1 - i) % stride == 0:  # every stride-th month, counted back from the latest
            body.append(f'<text x="{_n(left + i * step + step / 2)}" y="{bottom + legend + 14}" font-size="10" '
                        f'text-anchor="middle" fill="#445">{escape(month_label(p["month"]))}</text>')
        if i == 0 or p["month"].endswith("-01"):  # the year under its first month shown
            body.append(f'<text x="{_n(left + i * step + 1)}" y="{bottom + legend + 27}" font-size="9" '
                        f'fill="#667">{escape(_("%(year)s年", year=p["month"][:4]))}</text>')  # noqa: E501
    path = " ".join(f"{'M' if i == 0 else 'L'}{_n(x)},{_n(y)}" for i, (x, y) in enumerate(line_pts))
    body.append(f'<path class="trend-line" d="{path}" fill="none" stroke="{line[2]}" stroke-width="2.5"/>')
    for (x, y), p in zip(line_pts, points):
        body.append(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="3" fill="{line[2]}">'
                    f'<title>{escape(p["month"])} {escape(line[1])}:{_n(p.get(line[0], 0))}</title></circle>')
    return _svg(bottom + legend + 34, title, body, "chart-trend")


def month_label(month: str) -> str:
    """'2026-11' on the axis: 11月 (Nov on an English page)."""
    import calendar

    from webui.i18n import current

    if current() == "en":
        return calendar.month_abbr[int(month[5:7])]
    return f"{int(month[5:7])}月"
