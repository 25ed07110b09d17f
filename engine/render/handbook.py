"""The printable handbook (一本两库): every live published procedure of one edition as an A4 book.

The book is HTML with print CSS (Jinja2 template ``engine/templates/handbook.html``, autoescaped),
printed to PDF by Debian's Chromium driven through Playwright. It holds a cover, a table of
contents by the nine categories, and for each procedure its task list (任务单), legal basis,
disclosure points, supervision points, integrity risk points, local parameters and version, then
its flowchart on one A4 portrait page (lanes as columns, the flow from top to bottom).

A drawing made elsewhere may be too wide to read when fitted on one page: it is printed as an atlas: an overview page (总图) with the
sheet outlines drawn on it, then one landscape page per sheet (分图). Sheets are cut at lane
boundaries and between nodes, carry the lane names on their left edge, and empty sheets are
left out.

Public API: :class:`HandbookEntry`, :func:`collect_entries`, :func:`render_handbook_html`,
:func:`build_handbook`.
"""

from __future__ import annotations

import copy
import math
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from lxml import etree
from markupsafe import Markup
from sqlalchemy import select

from engine.bpmn.geometry import Box as _Box, text_width
from engine.core import catalogue, clock, procedures, voting
from engine.core.definitions import ProcedureDefinition
from .diagram import render_svg
from engine.core.errors import NotFound, Unavailable, XiaoweiError

if TYPE_CHECKING:
    from engine.services.facade import Xiaowei

__all__ = ["HandbookEntry", "build_handbook", "collect_entries", "render_handbook_html", "CHROMIUM_PATH"]

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
EDITIONS = ("village", "community")
EDITION_TITLES = {
    "village": "村级小微权力规范行权事项手册",
    "community": "社区小微权力规范行权事项手册",
}
EDITION_SUBTITLES = {"village": "村级版", "community": "社区版"}
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
CHINA = timezone(timedelta(hours=8))

STEP_KIND_ZH = {
    "task": "办理", "meeting": "会议", "vote": "表决", "approval": "审批", "disclosure": "公示",
    "supervision": "监督",
}
CHINESE_NUMERALS = "一二三四五六七八九十"

# Portrait chart area in CSS px (A4 210×297 mm, page margins 9/10 mm, a title and a key line): the
# generated charts (lanes as columns, engine.bpmn.swimlanes) print whole on one page.
CHART_AREA_WIDTH = 712.0
CHART_AREA_HEIGHT = 975.0
# Below this scale the 12-unit node text prints smaller than ~1.4 mm: cut the chart into sheets
# (only wide drawings made elsewhere, with lanes as rows, come to that).
MIN_READABLE_SCALE = 0.45
MAX_SCALE = 1.0  # never print a chart larger than drawn
SHEET_SCALE = 0.7  # sheets are cut to print at least this large (12-unit text ≈ 2.2 mm)
MAX_SHEET_SCALE = 0.8  # and at most this large
LANE_BAND = 34.0  # width of the lane-name band added to sheets that do not start at the left edge
CUT_PAD = 6.0  # keep this far from any node or label when cutting
SVG_NS = "http://www.w3.org/2000/svg"
_S = "{%s}" % SVG_NS
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class HandbookEntry:
    """One procedure in the book: its live published version and the parameter values in force."""

    definition: ProcedureDefinition
    version: int
    published_at: datetime
    params: dict[str, Any] = field(default_factory=dict)
    set_by: dict[str, str] = field(default_factory=dict)  # parameter key -> name of the org that set it


# --- flowchart sheets -------------------------------------------------------------------


@dataclass(frozen=True)
class _Lane:
    name: str
    box: _Box
    content_x: float  # where the lane's own label band ends


@dataclass(frozen=True)
class ChartSheet:
    """One page of a chart too large to print whole: its number and SVG markup."""

    number: int
    svg: Markup
    lanes: tuple[str, ...]


@dataclass(frozen=True)
class ChartPages:
    """The overview of a chart (with sheet outlines when cut) and its sheets (may be none)."""

    overview: Markup
    sheets: tuple[ChartSheet, ...]
    scale: float  # print scale of the overview (CSS px per diagram unit)
    sheet_scale: float | None


def _numbers(text: str | None) -> list[float]:
    return [float(n) for n in _NUMBER.findall(text or "")]


def _element_box(el: etree._Element) -> _Box | None:
    """Approximate bounds of one drawn element of the chart (shapes and text)."""
    tag = etree.QName(el).localname
    try:
        if tag == "rect":
            x, y = float(el.get("x", 0)), float(el.get("y", 0))
            return _Box.corners(x, y, x + float(el.get("width", 0)), y + float(el.get("height", 0)))
        if tag == "circle":
            cx, cy, r = float(el.get("cx", 0)), float(el.get("cy", 0)), float(el.get("r", 0))
            return _Box.corners(cx - r, cy - r, cx + r, cy + r)
        if tag == "path":
            nums = _numbers(el.get("d"))
            xs, ys = nums[0::2], nums[1::2]
            if xs and ys:
                return _Box.corners(min(xs), min(ys), max(xs), max(ys))
        if tag == "tspan":
            text = el.text or ""
            size = 12.0
            width = text_width(text, size)
            x, y = float(el.get("x", 0)), float(el.get("y", 0))
            return _Box.corners(x - width / 2, y - size, x + width / 2, y + 3)
    except ValueError:
        return None
    return None


def _union(boxes: list[_Box]) -> _Box | None:
    if not boxes:
        return None
    return _Box.corners(min(b.x0 for b in boxes), min(b.y0 for b in boxes), max(b.x1 for b in boxes), max(b.y1 for b in boxes))


def _has_class(el: etree._Element, name: str) -> bool:
    return name in (el.get("class") or "").split()


def _chart_items(root: etree._Element) -> tuple[list[_Box], list[_Lane]]:
    """Bounds of every node (with its label) and flow label, and the lanes, of a rendered chart."""
    items: list[_Box] = []
    lanes: list[_Lane] = []
    for g in root.iter(f"{_S}g"):
        if _has_class(g, "node"):
            box = _union([b for b in (_element_box(e) for e in g.iter()) if b is not None])
            if box is not None:
                items.append(box)
        elif _has_class(g, "lane"):
            frame = next((r for r in g.findall(f"{_S}rect") if _has_class(r, "frame")), None)
            band = next((r for r in g.findall(f"{_S}rect") if _has_class(r, "band")), None)
            title = g.find(f"{_S}title")
            box = _element_box(frame) if frame is not None else None
            if box is not None:
                band_box = _element_box(band) if band is not None else None
                lanes.append(_Lane((title.text or "") if title is not None else "", box,
                                   band_box.x1 if band_box is not None else box.x0))
    labels = root.find(f".//{_S}g[@class='layer-labels']")
    if labels is not None:
        for t in labels.iter(f"{_S}tspan"):
            box = _element_box(t)
            if box is not None:
                items.append(box)
    lanes.sort(key=lambda lane: lane.box.y0)
    return items, lanes


def _view_box(root: etree._Element) -> _Box:
    nums = _numbers(root.get("viewBox"))
    if len(nums) == 4:
        return _Box.corners(nums[0], nums[1], nums[0] + nums[2], nums[1] + nums[3])
    return _Box.corners(0, 0, float(root.get("width", 800)), float(root.get("height", 600)))


def _row_cuts(view: _Box, lanes: list[_Lane], max_height: float) -> list[tuple[float, float]]:
    """Horizontal bands of the chart, cut at lane boundaries, each at most ``max_height`` tall."""
    if not lanes:
        count = max(1, math.ceil(view.height / max_height))
        step = view.height / count
        return [(view.y0 + i * step, view.y0 + (i + 1) * step) for i in range(count)]
    bounds = sorted({lane.box.y0 for lane in lanes} | {lanes[-1].box.y1})
    bounds[0], bounds[-1] = view.y0, view.y1  # include the margins at top and bottom
    rows: list[tuple[float, float]] = []
    start = bounds[0]
    for prev, cut in zip(bounds, bounds[1:]):
        if cut - start > max_height and prev > start:
            rows.append((start, prev))
            start = prev
    rows.append((start, bounds[-1]))
    return rows


def _column_cuts(view: _Box, items: list[_Box], lane_end: float, max_width: float) -> list[tuple[float, float]]:
    """Vertical cuts of one band into columns of about equal width that avoid nodes and labels.

    Only the band's drawn extent is covered: a band whose first node lies far to the right starts
    there (its sheets get a lane-name band instead of the chart's own lane labels).
    """
    if not items:
        return []
    blocked = sorted((b.x0 - CUT_PAD, b.x1 + CUT_PAD) for b in items)
    first, last = min(b.x0 for b in items), max(b.x1 for b in items)
    start = view.x0 if first - lane_end < max_width / 4 else first - 2 * CUT_PAD
    end = min(view.x1, last + 2 * CUT_PAD)

    def free(x: float) -> bool:
        return not any(a < x < b for a, b in blocked)

    def room(x0: float) -> float:
        return max_width - (LANE_BAND if x0 > lane_end else 0.0)

    def cuts(balanced: int | None) -> list[tuple[float, float]]:
        columns: list[tuple[float, float]] = []
        x0 = start
        while x0 < end - 1:
            limit = x0 + room(x0)
            if limit >= end:
                columns.append((x0, end))
                break
            left = (balanced - len(columns)) if balanced else 0
            ideal = x0 + (end - x0) / left if left > 1 else limit
            ideal = min(ideal, limit)
            candidates = [c for c in [limit, ideal] + [b for _, b in blocked] + [a for a, _ in blocked]
                          if x0 + room(x0) / 3 < c <= limit and free(c)]
            cut = min(candidates, key=lambda c: abs(c - ideal)) if candidates else limit
            columns.append((x0, cut))
            x0 = cut
        return columns

    greedy = cuts(None)
    balanced = cuts(len(greedy))
    return balanced if len(balanced) <= len(greedy) else greedy


def _trim_rows(box: _Box, items: list[_Box], lanes: list[_Lane], view: _Box) -> _Box:
    """Shrink a sheet vertically to the lanes that hold something inside it."""
    inside = [b for b in items if b.meets(box)]
    if not inside or not lanes:
        return box
    top, bottom = min(b.y0 for b in inside), max(b.y1 for b in inside)
    y0 = max((lane.box.y0 for lane in lanes if lane.box.y0 <= top), default=box.y0)
    y1 = min((lane.box.y1 for lane in lanes if lane.box.y1 >= bottom), default=box.y1)
    if y0 <= lanes[0].box.y0:
        y0 = view.y0
    if y1 >= lanes[-1].box.y1:
        y1 = view.y1
    return _Box.corners(box.x0, max(box.y0, y0), box.x1, min(box.y1, y1))


def _strip_for_copy(svg: etree._Element) -> None:
    """Remove what a second copy of a chart must not repeat: style, title, defs and ids."""
    for el in list(svg):
        if etree.QName(el).localname in ("style", "title", "defs"):
            svg.remove(el)
    for el in svg.iter():
        if isinstance(el.tag, str) and "id" in el.attrib:
            del el.attrib["id"]


def _crop(svg: etree._Element, box: _Box) -> None:
    """Drop the nodes, flows and labels of a sheet copy that lie wholly outside ``box``."""
    margin = 4.0
    area = _Box.corners(box.x0 - margin, box.y0 - margin, box.x1 + margin, box.y1 + margin)
    for layer in ("layer-flows", "layer-nodes", "layer-labels"):
        group = svg.find(f".//{_S}g[@class='{layer}']")
        if group is None:
            continue
        for child in list(group):
            bounds = _union([b for b in (_element_box(e) for e in child.iter()) if b is not None])
            if bounds is None or not bounds.meets(area):
                group.remove(child)


def _lane_band(parent: etree._Element, lanes: list[_Lane], x: float, y0: float, y1: float) -> None:
    """Lane names on the left edge of a sheet cut from the middle of the chart."""
    group = etree.SubElement(parent, f"{_S}g", {"class": "hb-lane-band"})
    for lane in lanes:
        top, bottom = max(lane.box.y0, y0), min(lane.box.y1, y1)
        if bottom - top < 8:
            continue
        etree.SubElement(group, f"{_S}rect", {
            "x": f"{x:g}", "y": f"{top:g}", "width": f"{LANE_BAND:g}", "height": f"{bottom - top:g}",
            "class": "hb-lane-band-rect"})
        length = max(1, len(lane.name))
        size = max(7.0, min(13.0, (bottom - top - 10) / length))
        text = etree.SubElement(group, f"{_S}text", {
            "x": f"{x + LANE_BAND / 2:g}", "y": f"{(top + bottom) / 2:g}", "class": "hb-lane-band-text",
            "style": f"font-size:{size:.1f}px"})
        text.text = lane.name


def chart_pages(definition: ProcedureDefinition) -> ChartPages:
    """The flowchart of a procedure laid out for A4 portrait pages: the whole chart and any sheets.

    The overview is the chart from :func:`engine.diagram.render_svg` scaled to the page. When that
    scale would make its text unreadable (below ``MIN_READABLE_SCALE``), the chart is also cut into
    sheets printed at one common, readable scale, and the overview shows their numbered outlines.
    """
    svg = etree.fromstring(render_svg(definition.root).encode("utf-8"))
    view = _view_box(svg)
    fit = min(CHART_AREA_WIDTH / view.width, CHART_AREA_HEIGHT / view.height, MAX_SCALE)
    sheets: list[ChartSheet] = []
    boxes: list[_Box] = []
    sheet_scale: float | None = None
    if fit < MIN_READABLE_SCALE:
        items, lanes = _chart_items(svg)
        lane_end = max((lane.content_x for lane in lanes), default=view.x0)
        max_w, max_h = CHART_AREA_WIDTH / SHEET_SCALE, CHART_AREA_HEIGHT / SHEET_SCALE
        planned: list[tuple[_Box, bool]] = []
        # columns first: the charts run from top left to bottom right, so a column holds few lanes
        for x0, x1 in _column_cuts(view, items, lane_end, max_w):
            column = _Box.corners(x0, view.y0, x1, view.y1)
            column_items = [b for b in items if b.meets(column)]
            trimmed = _trim_rows(column, column_items, lanes, view)
            for y0, y1 in _row_cuts(trimmed, [lane for lane in lanes if lane.box.meets(trimmed)], max_h):
                box = _Box.corners(x0, y0, x1, y1)
                if any(b.meets(box) for b in column_items):
                    planned.append((_trim_rows(box, column_items, lanes, view), x0 > lane_end))
        sheet_scale = min(min(CHART_AREA_WIDTH / (b.width + (LANE_BAND if band else 0)),
                              CHART_AREA_HEIGHT / b.height) for b, band in planned)
        sheet_scale = min(sheet_scale, MAX_SHEET_SCALE)
        template = copy.deepcopy(svg)
        _strip_for_copy(template)
        for number, (box, with_band) in enumerate(planned, start=1):
            sheet = copy.deepcopy(template)
            _crop(sheet, box)
            left = box.x0 - (LANE_BAND if with_band else 0.0)
            width = box.x1 - left
            sheet.set("viewBox", f"{left:g} {box.y0:g} {width:g} {box.height:g}")
            sheet.set("width", f"{width * sheet_scale:.1f}")
            sheet.set("height", f"{box.height * sheet_scale:.1f}")
            sheet.set("class", "xw-bpmn hb-sheet")
            sheet.set("aria-label", f"{definition.name} 分图{number}")
            if with_band:
                # a white backdrop hides whatever the left neighbour draws under the band
                etree.SubElement(sheet, f"{_S}rect", {
                    "x": f"{left:g}", "y": f"{box.y0:g}", "width": f"{LANE_BAND:g}", "height": f"{box.height:g}",
                    "class": "hb-backdrop"})
                _lane_band(sheet, lanes, left, box.y0, box.y1)
            names = tuple(lane.name for lane in lanes if lane.box.y0 < box.y1 - 8 and lane.box.y1 > box.y0 + 8)
            sheets.append(ChartSheet(number, Markup(etree.tostring(sheet, encoding="unicode")), names))
            boxes.append(box)
    overview = svg
    overview.set("width", f"{view.width * fit:.1f}")
    overview.set("height", f"{view.height * fit:.1f}")
    overview.set("class", "xw-bpmn hb-chart")
    overview.set("data-procedure", definition.id)
    if boxes:
        grid = etree.SubElement(overview, f"{_S}g", {"class": "hb-grid"})
        size = 15.0 / fit  # about 15 px on paper
        for number, box in enumerate(boxes, start=1):
            etree.SubElement(grid, f"{_S}rect", {
                "x": f"{box.x0 + 3:g}", "y": f"{box.y0 + 3:g}", "width": f"{box.width - 6:g}",
                "height": f"{box.height - 6:g}", "class": "hb-grid-box", "style": f"stroke-width:{2.0 / fit:.1f}px"})
            label = etree.SubElement(grid, f"{_S}text", {
                "x": f"{box.x0 + 3 + size * 0.4:g}", "y": f"{box.y0 + 3 + size * 1.1:g}", "class": "hb-grid-label",
                "style": f"font-size:{size:.1f}px"})
            label.text = str(number)
    return ChartPages(Markup(etree.tostring(overview, encoding="unicode")), tuple(sheets), fit, sheet_scale)


# --- the book ---------------------------------------------------------------------------


def _china_date(at: datetime | None) -> str:
    if at is None:
        return ""
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    local = at.astimezone(CHINA)
    return f"{local.year}年{local.month}月{local.day}日"


def format_value(value: Any, ptype: str = "text") -> str:
    """A parameter value as printed: money with thousands separators, ratios as fractions."""
    if value is None:
        return "—"
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}" if value.denominator != 1 else str(value.numerator)
    if isinstance(value, Decimal) or ptype == "money":
        try:
            number = Decimal(str(value))
        except ArithmeticError:
            return str(value)
        text = f"{number:,.2f}"
        return text[:-3] if text.endswith(".00") else text
    return str(value)


def _vote_rule(step: Any, params: dict[str, Any]) -> str:
    """A vote step's rule in words with its source, under the handbook's parameters."""
    if step.kind != "vote" or not step.vote:
        return ""
    rule = voting.step_rule(step.vote, params, role=step.role)
    return voting.describe(rule) if rule is not None else ""


def _role_zh(key: str | None) -> str:
    return catalogue.role_zh(key, "—")


def _time_limit(step: Any) -> str:
    if step.time_limit is not None:
        return step.time_limit.zh()
    return step.time_limit_text or "—"


def _ordered_steps(d: ProcedureDefinition) -> list[Any]:
    """User tasks in flow order (breadth-first from the start), then any not reached."""
    order: list[str] = []
    seen: set[str] = set()
    queue = list(d.start_ids)
    while queue:
        node_id = queue.pop(0)
        if node_id in seen or node_id not in d.nodes:
            continue
        seen.add(node_id)
        if node_id in d.steps:
            order.append(node_id)
        for flow_id in d.nodes[node_id].outgoing:
            flow = d.flows.get(flow_id)
            if flow is not None:
                queue.append(flow.target)
    order += [sid for sid in d.steps if sid not in seen]
    return [d.steps[sid] for sid in order]


def _min_days(d: ProcedureDefinition, params: dict[str, Any], key: str | None) -> str:
    if not key:
        return "—"
    value = params.get(key)
    if value is None and key in d.parameters:
        value = d.parameters[key].default
    if value is None:
        return "—"
    return f"不少于{format_value(value)}天"


def _procedure_view(entry: HandbookEntry, number: int) -> dict[str, Any]:
    """Everything the template prints for one procedure, as plain values."""
    d = entry.definition
    steps = _ordered_steps(d)
    task_rows = [{
        "id": s.id, "name": s.name, "kind": STEP_KIND_ZH.get(s.kind, s.kind), "kind_key": s.kind,
        "role": _role_zh(s.role), "time_limit": _time_limit(s), "instructions": s.instructions,
        "evidence": s.evidence or "—", "proxy": s.proxy, "basis": s.basis,
        "vote_rule": _vote_rule(s, entry.params),
    } for s in steps]
    disclosures = [{
        "step": s.name, "what": s.disclosure.get("what", "") or "—",
        "where": [w.strip() for w in (s.disclosure.get("where", "") or "").split(";") if w.strip()],
        "min_days": _min_days(d, entry.params, s.disclosure.get("minDaysParam")),
    } for s in steps if s.disclosure]
    supervision: list[dict[str, str]] = []
    for s in steps:
        if s.supervision:
            supervision.append({"step": s.name, "role": _role_zh(s.supervision.get("role") or s.role),
                                "action": s.supervision.get("action", ""), "kind": "监督环节"})
        for note in s.supervision_notes:
            supervision.append({"step": s.name, "role": _role_zh(note.get("role")),
                                "action": note.get("action", ""), "kind": "随程监督"})
    params = []
    for key, p in d.parameters.items():
        value = entry.params.get(key, p.default)
        params.append({"key": key, "label": p.label, "value": format_value(value, p.type), "unit": p.unit,
                       "source": p.source, "changed": format_value(value, p.type) != format_value(p.default, p.type),
                       "default": format_value(p.default, p.type), "set_by": entry.set_by.get(key, "")})
    category = catalogue.categories().get(d.category)
    return {
        "number": number, "id": d.id, "anchor": "proc-" + re.sub(r"[^A-Za-z0-9_-]", "_", d.id),
        "name": d.name, "name_en": d.name_en, "category": category.zh if category else d.category,
        "description": d.description, "handling_subject": d.handling_subject, "handling_mode": d.handling_mode,
        "overall_time_limit": d.overall_time_limit, "version": entry.version,
        "published": _china_date(entry.published_at), "hash": d.content_hash[:12],
        "steps": task_rows, "legal_basis": d.cited_basis(),
        "disclosures": disclosures, "supervision": supervision, "risks": [r for r in d.risk_points if r],
        "params": params, "chart": chart_pages(d),
        "requires_disclosure": d.requires.get("disclosure", False),
        "requires_supervision": d.requires.get("supervision", False),
    }


def css_string(text: Any) -> Markup:
    """A CSS string literal for use inside ``<style>`` (where HTML escapes do not apply)."""
    out = []
    for ch in str(text):
        if ch.isalnum() or ch in " -_·()()":
            out.append(ch)
        else:
            out.append(f"\\{ord(ch):x} ")
    return Markup('"' + "".join(out) + '"')


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["css_string"] = css_string
    return env


def render_handbook_html(entries: list[HandbookEntry], *, edition: str, title: str | None = None,
                         generated_at: datetime | None = None, district: str | None = None,
                         applies_to: str | None = None, checkpoint: dict | None = None) -> str:
    """Render the handbook of ``edition`` ('village' or 'community') as one printable HTML document.

    Entries are grouped by the nine categories in :func:`engine.catalogue.categories` order
    (procedure id within a category); categories without procedures are left out. All text is
    escaped by the template; the flowcharts are inline SVG from :func:`engine.diagram.render_svg`.
    """
    if edition not in EDITIONS:
        raise XiaoweiError(f"手册版本应为 village 或 community,而不是“{edition}” / unknown edition {edition}")
    generated_at = generated_at or clock.now()
    cats = catalogue.categories()
    order = list(cats)
    ranked = sorted(entries, key=lambda e: (order.index(e.definition.category) if e.definition.category in order
                                            else len(order), e.definition.id))
    groups: list[dict[str, Any]] = []
    number = 0
    for entry in ranked:
        code = entry.definition.category
        if not groups or groups[-1]["code"] != code:
            cat = cats.get(code)
            groups.append({"code": code, "zh": cat.zh if cat else (code or "其他"), "en": cat.en if cat else "",
                           "procedures": []})
        number += 1
        groups[-1]["procedures"].append(_procedure_view(entry, number))
    for index, group in enumerate(groups):
        group["numeral"] = CHINESE_NUMERALS[index] if index < len(CHINESE_NUMERALS) else str(index + 1)
    book_title = title or EDITION_TITLES[edition]
    return _environment().get_template("handbook.html").render(
        title=book_title, edition=edition, edition_zh=EDITION_SUBTITLES[edition], district=district or "",
        applies_to=applies_to or "", checkpoint=_checkpoint_view(checkpoint),
        generated=_china_date(generated_at), count=number, groups=groups, kinds=STEP_KIND_ZH,
        village=edition == "village",
    )


def _checkpoint_view(checkpoint: dict | None) -> dict | None:
    """The latest signed checkpoint of the audit trail (engine.checkpoints.summary), for the cover."""
    if not checkpoint:
        return None
    at = checkpoint["at"]
    local = at + timedelta(hours=8) if isinstance(at, datetime) else None
    return {"number": checkpoint["number"], "root": checkpoint["root_hash"], "key_id": checkpoint["key_id"],
            "public_key": checkpoint["public_key"],
            "at": local.strftime("%Y年%m月%d日 %H:%M") if local else str(at)}


def _district(session: Any) -> Any:
    """The district organization when there is exactly one, else None."""
    from storage.models import Organization

    rows = session.scalars(select(Organization).where(Organization.kind == "district")).all()
    return rows[0] if len(rows) == 1 else None


def collect_entries(app: "Xiaowei", edition: str, org_code: str | None = None) -> list[HandbookEntry]:
    """The live published version of every procedure of ``edition`` (including 'both').

    Parameter values are those in force at ``org_code`` (a township's or village's own overrides,
    inherited district → township → village) when given; otherwise at the district when the
    database has exactly one district, else the defaults declared in the BPMN.
    """
    if edition not in EDITIONS:
        raise XiaoweiError(f"手册版本应为 village 或 community,而不是“{edition}” / unknown edition {edition}")
    entries = []
    with app.db.read() as s:
        where = _handbook_org(s, edition, org_code) if org_code else _district(s)
        names = {}
        if where is not None:
            from storage.models import Organization

            names = dict(s.execute(select(Organization.code, Organization.name)).all())
        for item in procedures.list_procedures(s, edition=edition):
            version = procedures.current_version(s, item["id"])
            definition = procedures.runtime(s, version.id).definition
            set_by: dict[str, str] = {}
            if where is not None:
                found = procedures.effective_params(s, definition, where)
                params = {k: v["value"] for k, v in found.items()}
                set_by = {k: names.get(v["source"], v["source"]) for k, v in found.items() if v["source"] != "default"}
            else:
                params = {k: p.default for k, p in definition.parameters.items()}
            entries.append(HandbookEntry(definition, version.version, version.published_at, params, set_by))
    return entries


def _handbook_org(session: Any, edition: str, code: str) -> Any:
    """The organization a handbook is printed for: a district, township or street, or a village or
    community of the edition's kind."""
    from storage.models import Organization

    org = session.scalar(select(Organization).where(Organization.code == code))
    if org is None:
        raise NotFound(f"没有编码为“{code}”的组织 / no organization {code}")
    kind = {"village": "village", "community": "community"}.get(org.kind)
    if kind is not None and kind != edition:
        raise XiaoweiError(f"“{org.name}”是{'村' if kind == 'village' else '社区'},应打印"
                           f"{'村级' if kind == 'village' else '社区'}版手册(--edition {kind}) / "
                           f"{code} is a {kind}: print the {kind} edition")
    return org


def district_name(app: "Xiaowei") -> str | None:
    """The name of the only district in the database, if there is exactly one."""
    with app.db.read() as s:
        district = _district(s)
        return district.name if district is not None else None


def print_pdf(html: str, output: Path, *, chromium: str = CHROMIUM_PATH, timeout_ms: float = 300_000) -> None:
    """Print HTML to an A4 PDF with the system Chromium through Playwright (never downloads a browser)."""
    if not Path(chromium).exists():
        raise Unavailable(f"没有找到 Chromium({chromium}),请先安装:apt-get install -y chromium fonts-noto-cjk "
                           f"/ Chromium not found at {chromium}; install it with apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise Unavailable("生成 PDF 需要 Python 包 playwright(pip install playwright,无需下载浏览器) "
                           "/ the playwright package is needed for PDF output") from None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(timeout_ms)
            page.set_content(html, wait_until="load")
            page.pdf(path=str(output), format="A4", print_background=True, prefer_css_page_size=True)
        finally:
            browser.close()


def build_handbook(app: "Xiaowei", edition: str, fmt: str, output: Path, org_code: str | None = None) -> dict[str, Any]:
    """Write the handbook of ``edition`` as ``fmt`` ('html' or 'pdf') to ``output``; with ``org_code``,
    with the local parameters in force at that township or village (their overrides marked).

    Returns ``{"procedures": n, "bytes": size, "seconds": elapsed}``.
    """
    if fmt not in ("html", "pdf"):
        raise XiaoweiError(f"格式应为 html 或 pdf,而不是“{fmt}” / unknown format {fmt}")
    started = time.monotonic()
    output = Path(output)
    entries = collect_entries(app, edition, org_code)
    applies_to = None
    if org_code:
        with app.db.read() as s:
            applies_to = _handbook_org(s, edition, org_code).name
    from engine.core.checkpoints import summary

    with app.db.read() as s:
        checkpoint = summary(s)
    html = render_handbook_html(entries, edition=edition, district=district_name(app), applies_to=applies_to,
                                checkpoint=checkpoint)
    output.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "html":
        output.write_text(html, encoding="utf-8")
    else:
        print_pdf(html, output)
    return {"procedures": len(entries), "bytes": output.stat().st_size,
            "seconds": round(time.monotonic() - started, 2)}

