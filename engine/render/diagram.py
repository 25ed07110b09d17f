"""Server-side rendering of BPMN 2.0 diagram interchange (DI) to standalone SVG.

Pages, case trails and the printed handbook show flowcharts without JavaScript, so the
diagram is drawn here from the ``bpmndi:BPMNShape`` bounds and ``bpmndi:BPMNEdge`` waypoints
of the first ``bpmndi:BPMNDiagram``.

The SVG is built with :mod:`lxml.etree`, so every piece of text taken from the BPMN file
(names, labels, ids) is escaped by the serializer; attribute *names* never come from the
input.  The output carries its own ``<style>`` element (classes only, no external fonts or
images, no links), so it works as a standalone file and inline in HTML.

Public API: :func:`render_svg`, :func:`render_svg_bytes`, :class:`DiagramError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from lxml import etree

from engine.bpmn.geometry import Box, is_wide as _is_wide, text_width as _text_width
from engine.core import xmlsafe
from engine.core.definitions import BPMN as BPMN_NS, BPMNDI as BPMNDI_NS, DC as DC_NS, DI as DI_NS, XW as XW_NS

__all__ = ["DiagramError", "path_svg", "render_svg", "render_svg_bytes", "safe_parser"]

SVG_NS = "http://www.w3.org/2000/svg"

_SVG = "{%s}" % SVG_NS
_B = "{%s}" % BPMN_NS
_BDI = "{%s}" % BPMNDI_NS
_DC = "{%s}" % DC_NS
_DI = "{%s}" % DI_NS
_XW = "{%s}" % XW_NS

MARGIN = 20.0
FONT_STACK = (
    '"Noto Sans CJK SC","Noto Sans SC","Source Han Sans SC","Microsoft YaHei",'
    '"PingFang SC",sans-serif'
)

NO_DI_MESSAGE = "没有图形信息(BPMN DI) / no diagram interchange"


class DiagramError(ValueError):
    """Raised when a BPMN document cannot be drawn (e.g. it has no diagram interchange)."""


# An XML parser that resolves no entities, loads no DTD and uses no network (for tests and callers
# that parse fragments themselves; whole documents go through :mod:`engine.core.xmlsafe`).
safe_parser = xmlsafe.safe_parser


# --------------------------------------------------------------------------- vocabulary

TASK_TAGS = {
    "task", "userTask", "manualTask", "serviceTask", "scriptTask", "businessRuleTask",
    "sendTask", "receiveTask", "callActivity", "subProcess", "transaction", "adHocSubProcess",
}
GATEWAY_TAGS = {
    "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway",
    "complexGateway", "gateway",
}
EVENT_TAGS = {
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent",
    "boundaryEvent", "implicitThrowEvent",
}
EDGE_TAGS = {"sequenceFlow", "messageFlow", "association", "dataInputAssociation",
             "dataOutputAssociation"}

STEP_KINDS = ("task", "meeting", "vote", "approval", "disclosure", "supervision")
STEP_TAGS = {
    "zh": {"meeting": "会议", "vote": "表决", "approval": "审批", "disclosure": "公示",
           "supervision": "监督"},
    "en": {"meeting": "meeting", "vote": "vote", "approval": "approval",
           "disclosure": "disclosure", "supervision": "supervision"},
}
STATE_TAGS = {
    "zh": {"current": "当前", "overdue": "超期"},
    "en": {"current": "current", "overdue": "overdue"},
}
END_OUTCOMES = ("completed", "rejected", "terminated")

# Colours (also used in the stylesheet below).
C_TEXT = "#1f2933"
C_LINE = "#4b5563"
C_VISITED = "#15803d"
C_CURRENT = "#1d4ed8"
C_OVERDUE = "#dc2626"
KIND_COLOURS = {
    "task": "#64748b",
    "meeting": "#7c3aed",
    "vote": "#c2410c",
    "approval": "#0f766e",
    "disclosure": "#a16207",
    "supervision": "#be185d",
}

_CSS = """
svg.xw-bpmn{font-family:%(font)s;font-size:12px;color:%(text)s;background:#fff}
.xw-bpmn text{fill:%(text)s;stroke:none}
.xw-bpmn .pool>rect.frame{fill:#fff;stroke:#6b7280;stroke-width:1.5}
.xw-bpmn .pool>rect.band{fill:#e5e9f0;stroke:#6b7280;stroke-width:1.5}
.xw-bpmn .pool text{font-size:14px;font-weight:700;fill:#111827}
.xw-bpmn .lane>rect.frame{fill:#fff;stroke:#9ca3af;stroke-width:1}
.xw-bpmn .lane.lane-alt>rect.frame{fill:#f8fafc}
.xw-bpmn .lane>rect.band{fill:#f1f4f8;stroke:#9ca3af;stroke-width:1}
.xw-bpmn .lane text{font-size:12.5px;font-weight:600;fill:#374151}
.xw-bpmn .flow path.line{fill:none;stroke:%(line)s;stroke-width:1.4;stroke-linejoin:round}
.xw-bpmn .flow.visited path.line{stroke:%(visited)s;stroke-width:3}
.xw-bpmn .flow.message-flow path.line{stroke-dasharray:6 4}
.xw-bpmn .flow.association path.line{stroke-dasharray:2 3;stroke-width:1}
.xw-bpmn.trail .flow:not(.visited){opacity:.55}
.xw-bpmn .flow-label{font-size:11.5px;fill:#374151;paint-order:stroke;stroke:#fff;stroke-width:4px;stroke-linejoin:round}
.xw-bpmn .flow.visited .flow-label{fill:%(visited)s;font-weight:600}
.xw-bpmn marker path.arrow{fill:%(line)s;stroke:none}
.xw-bpmn marker path.arrow-visited{fill:%(visited)s;stroke:none}
.xw-bpmn marker path.arrow-open{fill:#fff;stroke:%(line)s;stroke-width:1}
.xw-bpmn marker path.slash{fill:none;stroke:%(line)s;stroke-width:1.4}
.xw-bpmn marker path.slash-visited{fill:none;stroke:%(visited)s;stroke-width:1.6}
.xw-bpmn .node .shape{fill:#fff;stroke:#374151;stroke-width:1.5}
.xw-bpmn .node .mark{fill:none;stroke:#374151;stroke-width:1.5;stroke-linecap:round}
.xw-bpmn .node .mark-fill{fill:#374151;stroke:none}
.xw-bpmn .node .name{font-size:12px}
.xw-bpmn .node .label{font-size:11.5px;fill:#374151;paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}
.xw-bpmn .node .accent{stroke:none}
.xw-bpmn .node .badge rect{stroke:none}
.xw-bpmn .node .badge text{fill:#fff;font-size:10px;font-weight:700}
.xw-bpmn .kind-end-event .shape{stroke-width:4}
.xw-bpmn .kind-end-event.outcome-completed .shape{stroke:#166534}
.xw-bpmn .kind-end-event.outcome-rejected .shape{stroke:#b91c1c}
.xw-bpmn .kind-end-event.outcome-terminated .shape{stroke:#111827}
.xw-bpmn .kind-end-event.outcome-terminated .mark-fill{fill:#111827}
.xw-bpmn .kind-start-event .shape{stroke-width:1.5}
.xw-bpmn .non-interrupting .shape,.xw-bpmn .non-interrupting .inner{stroke-dasharray:4 2}
.xw-bpmn .node .inner{fill:none;stroke:#374151;stroke-width:1.2}
.xw-bpmn .kind-gateway .shape{fill:#fffbeb}
.xw-bpmn .kind-data .shape,.xw-bpmn .kind-annotation .shape{fill:#fff;stroke:#6b7280;stroke-width:1}
.xw-bpmn .kind-annotation .shape{fill:none}
.xw-bpmn .kind-group .shape{fill:none;stroke:#6b7280;stroke-dasharray:8 4 2 4}
%(kinds)s
.xw-bpmn.trail .node.state-default{opacity:.6}
.xw-bpmn .node.state-visited .shape{stroke:%(visited)s;stroke-width:2.5}
.xw-bpmn .node.state-visited .mark,.xw-bpmn .node.state-visited .inner{stroke:%(visited)s}
.xw-bpmn .node.state-visited .mark-fill{fill:%(visited)s}
.xw-bpmn .node.kind-end-event.state-visited .shape{stroke-width:4.5}
.xw-bpmn .node.state-current .shape{stroke:%(current)s;stroke-width:3.5;fill:#dbeafe}
.xw-bpmn .node.state-current .mark,.xw-bpmn .node.state-current .inner{stroke:%(current)s}
.xw-bpmn .node.state-current .name{font-weight:700;fill:#1e3a8a}
.xw-bpmn .node.state-overdue .shape{stroke:%(overdue)s;stroke-width:3.5;fill:#fee2e2}
.xw-bpmn .node.state-overdue .mark,.xw-bpmn .node.state-overdue .inner{stroke:%(overdue)s}
.xw-bpmn .node.state-overdue .name{font-weight:700;fill:#7f1d1d}
.xw-bpmn .tag rect{stroke:#fff;stroke-width:1}
.xw-bpmn .tag text{fill:#fff;font-size:10px;font-weight:700}
.xw-bpmn .tag-current rect{fill:%(current)s}
.xw-bpmn .tag-overdue rect{fill:%(overdue)s}
%(heat)s
"""


def _heat_colour(level: int) -> str:
    """Colour of heat bucket ``level`` (0..10): white to a warm orange."""
    t = level / 10.0
    lo, hi = (255, 255, 255), (249, 115, 22)
    rgb = [round(a + (b - a) * t * 0.85) for a, b in zip(lo, hi)]
    return "#%02x%02x%02x" % tuple(rgb)


def _stylesheet() -> str:
    kinds = "\n".join(
        f".xw-bpmn .step-{kind} .accent,.xw-bpmn .step-{kind} .badge rect{{fill:{colour}}}"
        for kind, colour in KIND_COLOURS.items()
    )
    heat = "\n".join(
        f".xw-bpmn .node.heat-{i} .shape{{fill:{_heat_colour(i)}}}" for i in range(11)
    )
    return _CSS % {
        "font": FONT_STACK, "text": C_TEXT, "line": C_LINE, "visited": C_VISITED,
        "current": C_CURRENT, "overdue": C_OVERDUE, "kinds": kinds, "heat": heat,
    }


# --------------------------------------------------------------------------- geometry

def _num(value: float) -> str:
    """Format a coordinate deterministically (at most two decimals, no trailing zeros)."""
    if not math.isfinite(value):
        value = 0.0
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _float(value: str | None, default: float = 0.0) -> float:
    try:
        result = float(value) if value is not None else default
    except ValueError:
        return default
    return result if math.isfinite(result) else default


def _bounds(element: etree._Element | None) -> Box | None:
    if element is None:
        return None
    b = element.find(_DC + "Bounds")
    if b is None:
        return None
    w = max(_float(b.get("width")), 0.0)
    h = max(_float(b.get("height")), 0.0)
    return Box(_float(b.get("x")), _float(b.get("y")), w, h)


def _label_bounds(di_element: etree._Element) -> Box | None:
    box = _bounds(di_element.find(_BDI + "BPMNLabel"))
    if box is None or box.w <= 0 or box.h <= 0:
        return None
    return box


# --------------------------------------------------------------------------- text

_INVALID_XML_CHARS = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NO_LINE_START = set("，。、；：！？）》」』】〉”’,.;:!?)]}·…%")
_OPENING = set("(（《【「“‘[")
_VERTICAL_FORMS = {
    "(": "︵", ")": "︶", "（": "︵", "）": "︶", "【": "︻", "】": "︼", "《": "︽", "》": "︾",
    "「": "﹁", "」": "﹂", "—": "︱", "-": "︱", "–": "︱", "…": "︙", "，": "︐", "、": "︑",
    "。": "︒", "：": "︓", "；": "︔", "“": "﹁", "”": "﹂",
}


def _clean(text: str | None) -> str:
    """Collapse whitespace and drop characters that XML cannot carry."""
    if not text:
        return ""
    text = _INVALID_XML_CHARS.sub("", text)
    return " ".join(text.split())


def _tokens(text: str) -> list[str]:
    """Split text into breakable units: single CJK characters, or Latin words with a space."""
    tokens: list[str] = []
    for match in re.finditer(r"[^\s\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]+\s*|\S\s*|\s+", text):
        tokens.append(match.group(0))
    return tokens


def _ellipsize(line: str, width: float, size: float) -> str:
    line = line.rstrip()
    while line and _text_width(line + "…", size) > width:
        line = line[:-1].rstrip()
    return line + "…"


def _break_point(line: str) -> int:
    """Where to cut a full line: before a late opening bracket (so "(…)" stays together)."""
    for i in range(len(line) - 1, 0, -1):
        if line[i] in _OPENING:
            return i if len(line) - i <= 6 and line[:i].strip() else len(line)
    return len(line)


def wrap_text(text: str, width: float, size: float, max_lines: int,
              balance: bool = True) -> list[str]:
    """Wrap ``text`` into at most ``max_lines`` lines no wider than ``width``.

    Chinese text breaks between any two characters (closing punctuation never starts a line,
    a short bracketed tail moves to the next line whole); Latin text breaks at spaces, and
    inside a word only when the word alone is too long. The last line ends with an ellipsis
    when text had to be dropped. With ``balance`` the lines are made about equally long
    (``村务联席/会议商议`` rather than ``村务联席会议商/议``) without adding a line.
    """
    lines, split_word = _wrap(text, width, size, max_lines)
    bracket_break = any(line[:1] in _OPENING for line in lines[1:])  # a natural break: keep it
    if balance and not bracket_break and 1 < len(lines) <= max_lines \
            and not lines[-1].endswith("…"):
        narrower = width - size / 2
        while narrower >= size:
            attempt, split = _wrap(text, narrower, size, max_lines)
            if len(attempt) != len(lines) or attempt[-1].endswith("…") or \
                    (split and not split_word):
                break
            if _widest(attempt, size) < _widest(lines, size):
                lines = attempt
            narrower -= size / 2
    return lines


def _widest(lines: list[str], size: float) -> float:
    return max((_text_width(line, size) for line in lines), default=0.0)


def _wrap(text: str, width: float, size: float, max_lines: int) -> tuple[list[str], bool]:
    """Greedy wrap; also tells whether a Latin word had to be split."""
    text = _clean(text)
    if not text:
        return [], False
    width = max(width, size)

    def fits(candidate: str) -> bool:
        return _text_width(candidate.rstrip(), size) <= width

    lines: list[str] = []
    current = ""
    split_word = False
    for token in _tokens(text):
        if fits(current + token):
            current += token
            continue
        if current.strip() and len(token.strip()) == 1 and token.strip() in _NO_LINE_START:
            current += token  # kinsoku: closing punctuation stays on this line
            continue
        if current.strip():
            cut = _break_point(current)
            lines.append(current[:cut].rstrip())
            current = current[cut:]
            if fits(current + token):
                current += token
                continue
        # A token wider than a line is broken by characters.
        split_word = split_word or len(token.strip()) > 1
        for ch in token:
            if not fits(current + ch) and current.strip() and ch not in _NO_LINE_START:
                lines.append(current.rstrip())
                current = ""
            current += ch
            if not current.strip():
                current = ""
    if current.strip():
        lines.append(current.rstrip())
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = _ellipsize(lines[-1], width, size)
    return lines, split_word


# --------------------------------------------------------------------------- model lookup

def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def _index_elements(root: etree._Element) -> dict[str, etree._Element]:
    """Map every BPMN model element id to its element (first occurrence wins)."""
    index: dict[str, etree._Element] = {}
    for element in root.iter(_B + "*"):
        element_id = element.get("id")
        if element_id and element_id not in index:
            index[element_id] = element
    return index


def _extension(element: etree._Element, name: str) -> etree._Element | None:
    ext = element.find(_B + "extensionElements")
    if ext is None:
        return None
    return ext.find(_XW + name)


def _step_kind(element: etree._Element) -> str | None:
    step = _extension(element, "step")
    if step is None:
        return None
    kind = (step.get("kind") or "").strip()
    return kind if kind in STEP_KINDS else "task"


def _end_outcome(element: etree._Element) -> str:
    end = _extension(element, "end")
    outcome = (end.get("outcome") if end is not None else None) or "completed"
    if element.find(_B + "terminateEventDefinition") is not None and end is None:
        outcome = "terminated"
    return outcome if outcome in END_OUTCOMES else "completed"


def _event_definition(element: etree._Element) -> str | None:
    for child in element:
        name = _local(child.tag)
        if name.endswith("EventDefinition"):
            return name[: -len("EventDefinition")]
    return None


def _name(element: etree._Element) -> str:
    if _local(element.tag) == "textAnnotation":
        return _clean(element.findtext(_B + "text"))
    return _clean(element.get("name"))


# --------------------------------------------------------------------------- svg helpers

def _sub(parent: etree._Element, tag: str, attrs: Mapping[str, str] | None = None,
         text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, _SVG + tag)
    for key, value in (attrs or {}).items():
        element.set(key, value)
    if text is not None:
        element.text = text
    return element


def _rect(parent: etree._Element, box: Box, cls: str, rx: float = 0.0) -> etree._Element:
    attrs = {"x": _num(box.x), "y": _num(box.y), "width": _num(box.w), "height": _num(box.h)}
    if cls:
        attrs["class"] = cls
    if rx:
        attrs["rx"] = _num(rx)
    return _sub(parent, "rect", attrs)


def _circle(parent: etree._Element, cx: float, cy: float, r: float, cls: str) -> None:
    _sub(parent, "circle", {"class": cls, "cx": _num(cx), "cy": _num(cy), "r": _num(max(r, 0.5))})


def _path(parent: etree._Element, d: str, cls: str) -> etree._Element:
    return _sub(parent, "path", {"class": cls, "d": d})


def _text_block(parent: etree._Element, lines: list[str], cx: float, top: float, size: float,
                line_height: float, cls: str, anchor: str = "middle") -> None:
    """Write ``lines`` as one ``<text>`` with a ``<tspan>`` per line, first line box at ``top``."""
    if not lines:
        return
    text = _sub(parent, "text", {"class": cls, "x": _num(cx), "text-anchor": anchor})
    for i, line in enumerate(lines):
        baseline = top + i * line_height + line_height / 2 + size * 0.36
        _sub(text, "tspan", {"x": _num(cx), "y": _num(baseline)}, line)


def _centered_block(parent: etree._Element, lines: list[str], cx: float, cy: float, size: float,
                    line_height: float, cls: str) -> None:
    _text_block(parent, lines, cx, cy - len(lines) * line_height / 2, size, line_height, cls)


def _pill(parent: etree._Element, cls: str, text: str, x: float, y: float,
          anchor: str = "start") -> None:
    """A small filled tag with white text; ``(x, y)`` is its top-left (or top-right) corner."""
    size = 10.0
    w = _text_width(text, size) + 8
    h = 14.0
    left = x if anchor == "start" else x - w
    group = _sub(parent, "g", {"class": cls})
    _rect(group, Box(left, y, w, h), "", rx=3)
    _sub(group, "text", {"x": _num(left + w / 2), "y": _num(y + h / 2 + size * 0.36),
                         "text-anchor": "middle"}, text)


def _vertical_label(parent: etree._Element, text: str, band: Box, cls: str,
                    size: float = 12.5) -> None:
    """Write a lane/pool label in a narrow vertical band.

    Mostly-Chinese labels are stacked one character per line (upright, with vertical
    punctuation forms); other labels are rotated by -90 degrees.
    """
    text = _clean(text)
    if not text or band.h <= 0:
        return
    wide = sum(1 for ch in text if _is_wide(ch))
    if wide * 2 >= len(text.replace(" ", "")):
        chars = [_VERTICAL_FORMS.get(ch, ch) for ch in text if ch != " "]
        available = band.h - 12
        size_used = size
        step = size_used * 1.1
        columns = 1
        while len(chars) * step > available and size_used > 10:
            size_used -= 0.5
            step = size_used * 1.1
        if len(chars) * step > available:
            columns = 2 if band.w >= 2 * size_used + 8 else 1
        per_column = max(1, int(available // step))
        if len(chars) > per_column * columns:
            chars = chars[: per_column * columns - 1] + ["︙"]
        cols = [chars[i:i + per_column] for i in range(0, len(chars), per_column)]
        column_gap = size_used * 1.15
        first_x = band.cx + (len(cols) - 1) * column_gap / 2  # vertical text runs right to left
        node = _sub(parent, "text", {"class": cls, "text-anchor": "middle"})
        if size_used != size:
            node.set("font-size", _num(size_used))
        for c, column in enumerate(cols):
            height = len(column) * step
            top = band.cy - height / 2
            x = first_x - c * column_gap
            for i, ch in enumerate(column):
                _sub(node, "tspan", {"x": _num(x), "y": _num(top + i * step + step / 2 + size_used * 0.36)},
                     ch)
    else:
        max_len = band.h - 10
        line = text
        if _text_width(line, size) > max_len:
            line = _ellipsize(line, max_len, size)
        _sub(parent, "text", {"class": cls, "text-anchor": "middle",
                              "transform": f"rotate(-90 {_num(band.cx)} {_num(band.cy)})",
                              "x": _num(band.cx), "y": _num(band.cy + size * 0.36)}, line)


LANE_HEAD = 36.0  # the name band at the head of a vertical lane (engine.bpmn.swimlanes)


def _is_vertical(di: etree._Element) -> bool:
    """A pool or lane drawn as a column (BPMN DI ``isHorizontal="false"``)."""
    return (di.get("isHorizontal") or "").strip().lower() == "false"


def _head_label(parent: etree._Element, text: str, band: Box, cls: str, size: float) -> None:
    """Write a pool/lane name centred in a horizontal band at its head (two lines at most)."""
    lines = wrap_text(text, band.w - 10, size, 2 if band.h >= 2 * size * 1.15 + 4 else 1)
    _centered_block(parent, lines, band.cx, band.cy, size, size * 1.15, cls)


# --------------------------------------------------------------------------- renderer

@dataclass
class _Shape:
    element: etree._Element
    di: etree._Element
    box: Box


class _Renderer:
    """Builds the SVG tree for one BPMN diagram."""

    def __init__(self, root: etree._Element, *, visited_nodes: Collection[str],
                 visited_flows: Collection[str], current: Collection[str],
                 overdue: Collection[str], heat: Mapping[str, float] | None,
                 title: str | None, lang: str) -> None:
        self.root = root
        self.visited_nodes = set(visited_nodes)
        self.visited_flows = set(visited_flows)
        self.current = set(current)
        self.overdue = set(overdue)
        self.heat = dict(heat or {})
        self.lang = "en" if lang == "en" else "zh"
        self.title = title
        self.index = _index_elements(root)
        self.extent: list[float] | None = None  # minx, miny, maxx, maxy

    # -- extent -----------------------------------------------------------------------
    def _grow(self, x0: float, y0: float, x1: float, y1: float) -> None:
        if self.extent is None:
            self.extent = [x0, y0, x1, y1]
        else:
            e = self.extent
            e[0], e[1], e[2], e[3] = min(e[0], x0), min(e[1], y0), max(e[2], x1), max(e[3], y1)

    def _grow_box(self, box: Box) -> None:
        self._grow(box.x, box.y, box.right, box.bottom)

    # -- entry point ------------------------------------------------------------------
    def render(self) -> str:
        diagram = self.root.find(".//" + _BDI + "BPMNDiagram")
        plane = diagram.find(_BDI + "BPMNPlane") if diagram is not None else None
        if plane is None or (plane.find(_BDI + "BPMNShape") is None
                             and plane.find(_BDI + "BPMNEdge") is None):
            raise DiagramError(NO_DI_MESSAGE)

        pools: list[_Shape] = []
        lanes: list[_Shape] = []
        nodes: list[_Shape] = []
        edges: list[tuple[etree._Element, etree._Element, list[tuple[float, float]]]] = []
        seen: set[str] = set()
        for di in plane:
            tag = _local(di.tag)
            ref = di.get("bpmnElement") or ""
            element = self.index.get(ref)
            if element is None or ref in seen:
                continue
            if tag == "BPMNShape":
                box = _bounds(di)
                if box is None:
                    continue
                seen.add(ref)
                kind = _local(element.tag)
                if kind == "participant":
                    pools.append(_Shape(element, di, box))
                elif kind == "lane":
                    lanes.append(_Shape(element, di, box))
                else:
                    nodes.append(_Shape(element, di, box))
                self._grow_box(box)
                label = _label_bounds(di)
                if label is not None:
                    self._grow_box(label)
            elif tag == "BPMNEdge":
                points = [(_float(p.get("x")), _float(p.get("y")))
                          for p in di.findall(_DI + "waypoint")]
                if len(points) < 2:
                    continue
                seen.add(ref)
                edges.append((element, di, points))
                for x, y in points:
                    self._grow(x, y, x, y)
                label = _label_bounds(di)
                if label is not None:
                    self._grow_box(label)
        if self.extent is None:
            raise DiagramError(NO_DI_MESSAGE)
        # Room for labels drawn below events/gateways and tags above nodes.
        for shape in nodes:
            if _local(shape.element.tag) in EVENT_TAGS | GATEWAY_TAGS and \
                    _label_bounds(shape.di) is None and _name(shape.element):
                self._grow(shape.box.cx - 50, shape.box.y, shape.box.cx + 50,
                           shape.box.bottom + 40)
            self._grow(shape.box.x, shape.box.y - 10, shape.box.right, shape.box.bottom)

        x0, y0, x1, y1 = self.extent
        x0, y0, x1, y1 = x0 - MARGIN, y0 - MARGIN, x1 + MARGIN, y1 + MARGIN
        width, height = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
        title = _clean(self.title) or self._default_title()

        trail = bool(self.visited_nodes or self.visited_flows or self.current or self.overdue)
        svg = etree.Element(_SVG + "svg", nsmap={None: SVG_NS})
        svg.set("class", "xw-bpmn trail" if trail else "xw-bpmn")
        svg.set("viewBox", " ".join(_num(v) for v in (x0, y0, width, height)))
        svg.set("width", _num(width))
        svg.set("height", _num(height))
        svg.set("role", "img")
        svg.set("aria-label", title)
        svg.set("lang", "en" if self.lang == "en" else "zh-CN")
        _sub(svg, "title", text=title)
        _sub(svg, "style", text=_stylesheet())
        self._defs(svg)
        _rect(svg, Box(x0, y0, width, height), "", 0).set("fill", "#fff")

        layer_pools = _sub(svg, "g", {"class": "layer-pools"})
        layer_edges = _sub(svg, "g", {"class": "layer-flows"})
        layer_nodes = _sub(svg, "g", {"class": "layer-nodes"})
        layer_labels = _sub(svg, "g", {"class": "layer-labels"})

        lane_boxes = [lane.box for lane in lanes]
        for pool in pools:
            self._pool(layer_pools, pool, lane_boxes)
        for i, lane in enumerate(sorted(lanes, key=lambda s: (s.box.y, s.box.x))):
            self._lane(layer_pools, lane, i)
        # Groups, data and annotations go under the flow nodes.
        ordered = sorted(nodes, key=lambda s: 0 if _local(s.element.tag) == "group" else 1)
        for shape in ordered:
            self._node(layer_nodes, shape)
        for element, di, points in edges:
            self._edge(layer_edges, layer_labels, element, di, points)
        return etree.tostring(svg, encoding="unicode")

    def _default_title(self) -> str:
        for tag in ("collaboration", "process"):
            for element in self.root.iter(_B + tag):
                name = _name(element)
                if name:
                    return name
        return "BPMN 流程图" if self.lang == "zh" else "BPMN diagram"

    def _defs(self, svg: etree._Element) -> None:
        defs = _sub(svg, "defs")
        for marker_id, cls in (("xw-arrow", "arrow"), ("xw-arrow-visited", "arrow-visited")):
            marker = _sub(defs, "marker", {
                "id": marker_id, "viewBox": "0 0 12 10", "refX": "11.5", "refY": "5",
                "markerWidth": "12", "markerHeight": "10", "markerUnits": "userSpaceOnUse",
                "orient": "auto"})
            _path(marker, "M0.5,0.8 L11.5,5 L0.5,9.2 Z", cls)
        marker = _sub(defs, "marker", {
            "id": "xw-arrow-open", "viewBox": "0 0 12 10", "refX": "11.5", "refY": "5",
            "markerWidth": "12", "markerHeight": "10", "markerUnits": "userSpaceOnUse",
            "orient": "auto"})
        _path(marker, "M0.5,0.8 L11.5,5 L0.5,9.2 Z", "arrow-open")
        marker = _sub(defs, "marker", {
            "id": "xw-message-start", "viewBox": "0 0 10 10", "refX": "5", "refY": "5",
            "markerWidth": "10", "markerHeight": "10", "markerUnits": "userSpaceOnUse",
            "orient": "auto"})
        _circle(marker, 5, 5, 3.5, "arrow-open")
        for marker_id, cls in (("xw-default", "slash"), ("xw-default-visited", "slash-visited")):
            marker = _sub(defs, "marker", {
                "id": marker_id, "viewBox": "0 0 20 20", "refX": "0", "refY": "10",
                "markerWidth": "20", "markerHeight": "20", "markerUnits": "userSpaceOnUse",
                "orient": "auto"})
            _path(marker, "M6,15 L14,5", cls)

    # -- pools and lanes --------------------------------------------------------------
    def _pool(self, layer: etree._Element, pool: _Shape, lane_boxes: list[Box]) -> None:
        element_id = pool.element.get("id", "")
        group = _sub(layer, "g", {"class": "pool", "id": "pool-" + element_id,
                                  "data-id": element_id})
        name = _name(pool.element)
        _sub(group, "title", text=name or element_id)
        box = pool.box
        _rect(group, box, "frame")
        inner = [lb for lb in lane_boxes
                 if lb.x >= box.x - 1 and lb.right <= box.right + 1
                 and lb.y >= box.y - 1 and lb.bottom <= box.bottom + 1]
        if _is_vertical(pool.di):  # lanes as columns: the pool's name across the top
            band_h = 30.0
            if inner:
                offset = min(lb.y for lb in inner) - box.y
                if 10 <= offset <= 120:
                    band_h = offset
            band = Box(box.x, box.y, box.w, min(band_h, box.h))
            _rect(group, band, "band")
            _head_label(group, name, band, "pool-label", 14)
            return
        band_w = 30.0
        if inner:
            offset = min(lb.x for lb in inner) - box.x
            if 10 <= offset <= 120:
                band_w = offset
        band = Box(box.x, box.y, min(band_w, box.w), box.h)
        _rect(group, band, "band")
        _vertical_label(group, name, band, "pool-label", 14)

    def _lane(self, layer: etree._Element, lane: _Shape, index: int) -> None:
        element_id = lane.element.get("id", "")
        cls = "lane lane-alt" if index % 2 else "lane"
        group = _sub(layer, "g", {"class": cls, "id": "lane-" + element_id,
                                  "data-id": element_id})
        name = _name(lane.element)
        _sub(group, "title", text=name or element_id)
        box = lane.box
        _rect(group, box, "frame")
        if _is_vertical(lane.di):  # a column: its name at the head
            band = Box(box.x, box.y, box.w, min(LANE_HEAD, box.h))
            _rect(group, band, "band")
            _head_label(group, name, band, "lane-label", 12.5)
            return
        band_w = min(30.0, box.w)
        band = Box(box.x, box.y, band_w, box.h)
        _rect(group, band, "band")
        _vertical_label(group, name, band, "lane-label", 12.5)

    # -- flow nodes -------------------------------------------------------------------
    def _node(self, layer: etree._Element, shape: _Shape) -> None:
        element = shape.element
        element_id = element.get("id", "")
        tag = _local(element.tag)
        classes = ["node", "kind-" + _kebab(tag)]
        if tag in GATEWAY_TAGS:
            classes.append("kind-gateway")
        elif tag in EVENT_TAGS:
            classes.append("kind-event")
        elif tag in TASK_TAGS:
            classes.append("kind-activity")
        elif tag in ("dataObjectReference", "dataStoreReference", "dataObject"):
            classes.append("kind-data")
        elif tag == "textAnnotation":
            classes.append("kind-annotation")
        step_kind = _step_kind(element) if tag in TASK_TAGS else None
        if step_kind:
            classes.append("step-" + step_kind)
        if tag == "endEvent":
            classes.append("outcome-" + _end_outcome(element))
        if tag == "boundaryEvent" and element.get("cancelActivity") == "false":
            classes.append("non-interrupting")
        states = []
        if element_id in self.visited_nodes:
            states.append("visited")
        if element_id in self.current:
            states.append("current")
        if element_id in self.overdue:
            states.append("overdue")
        classes.extend("state-" + s for s in (states or ["default"]))
        if element_id in self.heat:
            value = self.heat[element_id]
            try:
                level = round(min(max(float(value), 0.0), 1.0) * 10)
            except (TypeError, ValueError):
                level = 0
            classes.append(f"heat-{level}")

        group = _sub(layer, "g", {"class": " ".join(classes), "id": "node-" + element_id,
                                  "data-id": element_id})
        name = _name(element)
        _sub(group, "title", text=name or element_id)
        box = shape.box
        if tag in TASK_TAGS:
            self._activity(group, element, shape, tag, step_kind)
        elif tag in GATEWAY_TAGS:
            self._gateway(group, box, tag, element)
            self._outside_label(group, shape, name)
        elif tag in EVENT_TAGS:
            self._event(group, box, tag, element)
            self._outside_label(group, shape, name)
        elif tag == "textAnnotation":
            _path(group, f"M{_num(box.x + 10)},{_num(box.y)} L{_num(box.x)},{_num(box.y)} "
                         f"L{_num(box.x)},{_num(box.bottom)} L{_num(box.x + 10)},{_num(box.bottom)}",
                  "shape")
            lines = wrap_text(name, box.w - 8, 11.5, max(1, int(box.h // 14)))
            _text_block(group, lines, box.x + 5, box.y + 2, 11.5, 14, "label", anchor="start")
        elif tag == "group":
            _rect(group, box, "shape", rx=8)
            lines = wrap_text(name, box.w - 8, 11.5, 2)
            _text_block(group, lines, box.cx, box.y + 2, 11.5, 14, "label")
        elif tag in ("dataObjectReference", "dataObject"):
            fold = min(10.0, box.w / 3)
            _path(group, f"M{_num(box.x)},{_num(box.y)} L{_num(box.right - fold)},{_num(box.y)} "
                         f"L{_num(box.right)},{_num(box.y + fold)} L{_num(box.right)},{_num(box.bottom)} "
                         f"L{_num(box.x)},{_num(box.bottom)} Z", "shape")
            self._outside_label(group, shape, name)
        elif tag == "dataStoreReference":
            ry = min(8.0, box.h / 4)
            _path(group, f"M{_num(box.x)},{_num(box.y + ry)} "
                         f"A{_num(box.w / 2)},{_num(ry)} 0 0 1 {_num(box.right)},{_num(box.y + ry)} "
                         f"L{_num(box.right)},{_num(box.bottom - ry)} "
                         f"A{_num(box.w / 2)},{_num(ry)} 0 0 1 {_num(box.x)},{_num(box.bottom - ry)} Z "
                         f"M{_num(box.x)},{_num(box.y + ry)} "
                         f"A{_num(box.w / 2)},{_num(ry)} 0 0 0 {_num(box.right)},{_num(box.y + ry)}",
                  "shape")
            self._outside_label(group, shape, name)
        else:
            _rect(group, box, "shape", rx=4)
            lines = wrap_text(name, box.w - 8, 11.5, 3)
            _centered_block(group, lines, box.cx, box.cy, 11.5, 14, "name")
        self._state_tags(group, box, states)

    def _activity(self, group: etree._Element, element: etree._Element, shape: _Shape,
                  tag: str, step_kind: str | None) -> None:
        box = shape.box
        expanded = tag in ("subProcess", "transaction", "adHocSubProcess") and \
            shape.di.get("isExpanded") == "true"
        _rect(group, box, "shape", rx=10)
        if tag == "transaction":
            _rect(group, Box(box.x + 3, box.y + 3, box.w - 6, box.h - 6), "inner", rx=8)
        if tag == "callActivity":
            group.find(_SVG + "rect").set("style", "stroke-width:4")
        name = _name(element)
        if step_kind and step_kind != "task":
            _rect(group, Box(box.x + 1, box.y + 8, 4, max(box.h - 16, 0)), "accent", rx=2)
            tag_text = STEP_TAGS[self.lang].get(step_kind, step_kind)
            badge = _sub(group, "g", {"class": "badge"})
            w = _text_width(tag_text, 10) + 8
            _rect(badge, Box(box.x + 8, box.y - 7, w, 14), "", rx=3)
            _sub(badge, "text", {"x": _num(box.x + 8 + w / 2), "y": _num(box.y + 3.6),
                                 "text-anchor": "middle"}, tag_text)
        if expanded:
            lines = wrap_text(name, box.w - 16, 12.5, 2)
            _text_block(group, lines, box.x + 10, box.y + 6, 12.5, 15.5, "name", anchor="start")
            return
        size, line_height = 12.0, 15.0
        marker_room = 0.0
        if tag in ("subProcess", "adHocSubProcess", "callActivity") and not expanded:
            marker_room = 14.0
            mx, my = box.cx, box.bottom - 10
            _rect(group, Box(mx - 6, my - 6, 12, 12), "mark")
            _path(group, f"M{_num(mx - 3.5)},{_num(my)} L{_num(mx + 3.5)},{_num(my)} "
                         f"M{_num(mx)},{_num(my - 3.5)} L{_num(mx)},{_num(my + 3.5)}", "mark")
        pad = 6.0
        shift = 2.0 if step_kind and step_kind != "task" else 0.0  # room for the accent bar
        max_lines = max(1, min(4, int((box.h - 8 - marker_room) // line_height)))
        lines = wrap_text(name, box.w - 2 * pad - shift, size, max_lines)
        _centered_block(group, lines, box.cx + shift, box.cy - marker_room / 2, size,
                        line_height, "name")

    def _gateway(self, group: etree._Element, box: Box, tag: str,
                 element: etree._Element) -> None:
        cx, cy = box.cx, box.cy
        _path(group, f"M{_num(cx)},{_num(box.y)} L{_num(box.right)},{_num(cy)} "
                     f"L{_num(cx)},{_num(box.bottom)} L{_num(box.x)},{_num(cy)} Z", "shape")
        r = min(box.w, box.h) / 2
        m = r * 0.42
        if tag == "exclusiveGateway":
            k = m * 0.78
            path = _path(group, f"M{_num(cx - k)},{_num(cy - k)} L{_num(cx + k)},{_num(cy + k)} "
                                f"M{_num(cx + k)},{_num(cy - k)} L{_num(cx - k)},{_num(cy + k)}",
                         "mark")
            path.set("style", "stroke-width:3.2")
        elif tag == "parallelGateway":
            path = _path(group, f"M{_num(cx)},{_num(cy - m)} L{_num(cx)},{_num(cy + m)} "
                                f"M{_num(cx - m)},{_num(cy)} L{_num(cx + m)},{_num(cy)}", "mark")
            path.set("style", "stroke-width:3.2")
        elif tag == "inclusiveGateway":
            _circle(group, cx, cy, m, "mark")
            group[-1].set("style", "stroke-width:2.5")
        elif tag == "eventBasedGateway":
            _circle(group, cx, cy, m * 1.15, "mark")
            _circle(group, cx, cy, m * 0.95, "mark")
            self._polygon(group, cx, cy, m * 0.6, 5, "mark")
        elif tag == "complexGateway":
            k = m * 0.8
            path = _path(group, f"M{_num(cx)},{_num(cy - m)} L{_num(cx)},{_num(cy + m)} "
                                f"M{_num(cx - m)},{_num(cy)} L{_num(cx + m)},{_num(cy)} "
                                f"M{_num(cx - k * .7)},{_num(cy - k * .7)} L{_num(cx + k * .7)},{_num(cy + k * .7)} "
                                f"M{_num(cx + k * .7)},{_num(cy - k * .7)} L{_num(cx - k * .7)},{_num(cy + k * .7)}",
                         "mark")
            path.set("style", "stroke-width:2.5")

    @staticmethod
    def _polygon(group: etree._Element, cx: float, cy: float, r: float, n: int, cls: str) -> None:
        points = []
        for i in range(n):
            angle = -math.pi / 2 + 2 * math.pi * i / n
            points.append(f"{_num(cx + r * math.cos(angle))},{_num(cy + r * math.sin(angle))}")
        _path(group, "M" + " L".join(points) + " Z", cls)

    def _event(self, group: etree._Element, box: Box, tag: str,
               element: etree._Element) -> None:
        cx, cy = box.cx, box.cy
        r = min(box.w, box.h) / 2
        _circle(group, cx, cy, r, "shape")
        definition = _event_definition(element)
        if tag in ("intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent"):
            _circle(group, cx, cy, r - 3, "inner")
        if tag == "endEvent" and (definition == "terminate"
                                  or _end_outcome(element) == "terminated"):
            _circle(group, cx, cy, r * 0.55, "mark-fill")
            return
        if definition == "timer":
            self._clock(group, cx, cy, r - 7)
        elif definition == "message":
            w, h = r * 0.95, r * 0.65
            filled = tag in ("endEvent", "intermediateThrowEvent")
            _path(group, f"M{_num(cx - w / 2)},{_num(cy - h / 2)} L{_num(cx + w / 2)},{_num(cy - h / 2)} "
                         f"L{_num(cx + w / 2)},{_num(cy + h / 2)} L{_num(cx - w / 2)},{_num(cy + h / 2)} Z "
                         f"M{_num(cx - w / 2)},{_num(cy - h / 2)} L{_num(cx)},{_num(cy + h * 0.1)} "
                         f"L{_num(cx + w / 2)},{_num(cy - h / 2)}",
                  "mark-fill" if filled else "mark")
        elif definition == "signal":
            k = r * 0.5
            _path(group, f"M{_num(cx)},{_num(cy - k)} L{_num(cx + k * 0.9)},{_num(cy + k * 0.6)} "
                         f"L{_num(cx - k * 0.9)},{_num(cy + k * 0.6)} Z", "mark")
        elif definition in ("error", "escalation", "conditional", "compensate", "link",
                            "cancel"):
            k = r * 0.42
            if definition == "conditional":
                _rect(group, Box(cx - k, cy - k * 1.2, 2 * k, 2.4 * k), "mark")
                _path(group, " ".join(
                    f"M{_num(cx - k * 0.6)},{_num(cy + d)} L{_num(cx + k * 0.6)},{_num(cy + d)}"
                    for d in (-k * 0.6, 0.0, k * 0.6)), "mark")
            else:
                _path(group, f"M{_num(cx - k)},{_num(cy + k)} L{_num(cx - k * 0.3)},{_num(cy - k)} "
                             f"L{_num(cx + k * 0.3)},{_num(cy + k * 0.2)} L{_num(cx + k)},{_num(cy - k)}",
                      "mark")

    @staticmethod
    def _clock(group: etree._Element, cx: float, cy: float, r: float) -> None:
        r = max(r, 3.0)
        _circle(group, cx, cy, r, "mark")
        ticks = []
        for i in range(12):
            angle = 2 * math.pi * i / 12
            inner = r * (0.72 if i % 3 == 0 else 0.82)
            ticks.append(f"M{_num(cx + inner * math.sin(angle))},{_num(cy - inner * math.cos(angle))} "
                         f"L{_num(cx + r * math.sin(angle))},{_num(cy - r * math.cos(angle))}")
        tick_path = _path(group, " ".join(ticks), "mark")
        tick_path.set("style", "stroke-width:0.8")
        _path(group, f"M{_num(cx)},{_num(cy - r * 0.6)} L{_num(cx)},{_num(cy)} "
                     f"L{_num(cx + r * 0.45)},{_num(cy + r * 0.1)}", "mark")

    def _outside_label(self, group: etree._Element, shape: _Shape, name: str) -> None:
        """Label of an event, gateway or data element: at its BPMNLabel bounds or below it."""
        if not name:
            return
        size, line_height = 11.5, 14.0
        label = _label_bounds(shape.di)
        if label is not None and label.right <= shape.box.x + 1:
            # left of its shape (lanes as columns): keep to the label's width, flush right
            lines = wrap_text(name, label.w + 4, size, 4)
            top = label.cy - len(lines) * line_height / 2
            _text_block(group, lines, label.right, top, size, line_height, "label", anchor="end")
            return
        if label is not None:
            width = max(label.w, 90.0)
            max_lines = max(2, int(label.h // line_height) + 1)
            lines = wrap_text(name, width, size, min(max_lines, 4))
            top = label.cy - len(lines) * line_height / 2
            _text_block(group, lines, label.cx, top, size, line_height, "label")
            return
        lines = wrap_text(name, max(shape.box.w + 64, 100.0), size, 3)
        _text_block(group, lines, shape.box.cx, shape.box.bottom + 3, size, line_height, "label")

    def _state_tags(self, group: etree._Element, box: Box, states: list[str]) -> None:
        tags = STATE_TAGS[self.lang]
        right = box.right - 6 if box.w > 60 else box.right + 10
        for state in ("overdue", "current"):
            if state in states:
                text = tags[state]
                _pill(group, f"tag tag-{state}", text, right, box.y - 7, anchor="end")
                right -= _text_width(text, 10) + 12
                if state == "overdue":
                    break  # an overdue step is current by definition; one tag is enough

    # -- edges ------------------------------------------------------------------------
    def _edge(self, layer: etree._Element, labels: etree._Element, element: etree._Element,
              di: etree._Element, points: list[tuple[float, float]]) -> None:
        element_id = element.get("id", "")
        tag = _local(element.tag)
        classes = ["flow", "kind-" + _kebab(tag)]
        if tag == "messageFlow":
            classes.append("message-flow")
        elif tag in ("association", "dataInputAssociation", "dataOutputAssociation"):
            classes.append("association")
        visited = element_id in self.visited_flows
        source = self.index.get(element.get("sourceRef") or "")
        is_default = (tag == "sequenceFlow" and source is not None
                      and source.get("default") == element_id
                      and _local(source.tag) not in ("parallelGateway",))
        conditional = (tag == "sequenceFlow" and element.find(_B + "conditionExpression") is not None
                       and source is not None and _local(source.tag) in TASK_TAGS)
        if is_default:
            classes.append("default")
        if conditional:
            classes.append("conditional")
        classes.append("visited" if visited else "unvisited")
        group = _sub(layer, "g", {"class": " ".join(classes), "id": "flow-" + element_id,
                                  "data-id": element_id})
        name = _name(element)
        _sub(group, "title", text=name or element_id)
        d = "M" + " L".join(f"{_num(x)},{_num(y)}" for x, y in points)
        line = _path(group, d, "line")
        suffix = "-visited" if visited else ""
        if tag == "sequenceFlow":
            line.set("marker-end", f"url(#xw-arrow{suffix})")
            if is_default:
                line.set("marker-start", f"url(#xw-default{suffix})")
        elif tag == "messageFlow":
            line.set("marker-end", "url(#xw-arrow-open)")
            line.set("marker-start", "url(#xw-message-start)")
        elif tag in ("dataInputAssociation", "dataOutputAssociation"):
            line.set("marker-end", "url(#xw-arrow-open)")
        if not name:
            return
        label_group = _sub(labels, "g", {"class": " ".join(classes[:2] + classes[-1:]),
                                         "data-id": element_id})
        size = 11.5
        label = _label_bounds(di)
        if label is not None:
            lines = wrap_text(name, max(label.w, _text_width(name, size) if len(name) <= 8
                                        else 96.0), size, 3)
            top = label.cy - len(lines) * 14 / 2
            _text_block(label_group, lines, label.cx, top, size, 14, "flow-label")
            return
        (ax, ay), (bx, by) = max(zip(points, points[1:]),
                                 key=lambda seg: math.hypot(seg[1][0] - seg[0][0],
                                                            seg[1][1] - seg[0][1]))
        mx, my = (ax + bx) / 2, (ay + by) / 2
        lines = wrap_text(name, 110.0, size, 2)
        if abs(by - ay) > abs(bx - ax):  # vertical segment: text to its right
            top = my - len(lines) * 14 / 2
            _text_block(label_group, lines, mx + 6, top, size, 14, "flow-label", anchor="start")
        else:  # horizontal segment: text above it
            top = my - 4 - len(lines) * 14
            _text_block(label_group, lines, mx, top, size, 14, "flow-label")


# --------------------------------------------------------------------------- public API

def render_svg(root: etree._Element, *, visited_nodes: Iterable[str] = (),
               visited_flows: Iterable[str] = (), current: Iterable[str] = (),
               overdue: Iterable[str] = (), heat: Mapping[str, float] | None = None,
               title: str | None = None, lang: str = "zh") -> str:
    """Render the first BPMN diagram of a parsed ``bpmn:definitions`` element to SVG.

    :param root: the ``bpmn:definitions`` element (or its ``ElementTree``), parsed safely.
    :param visited_nodes: ids of flow nodes on the path travelled (drawn green).
    :param visited_flows: ids of sequence flows on the path travelled (drawn green, thicker).
    :param current: ids of the nodes where the case stands now (blue, tag 当前).
    :param overdue: ids of nodes past their time limit (red, tag 超期).
    :param heat: optional node id → value in 0..1, tinting the node fill (white → orange).
    :param title: accessible title; defaults to the collaboration or process name.
    :param lang: ``"zh"`` (default) or ``"en"`` for the small tags drawn on nodes.
    :returns: a standalone ``<svg>`` document (no XML declaration), deterministic for the
        same input.
    :raises DiagramError: when the document has no BPMN diagram interchange.
    """
    if isinstance(root, etree._ElementTree):
        root = root.getroot()
    renderer = _Renderer(root, visited_nodes=list(visited_nodes),
                         visited_flows=list(visited_flows), current=list(current),
                         overdue=list(overdue), heat=heat, title=title, lang=lang)
    return renderer.render()


def path_svg(d, nodes: Iterable[str] = (), flows: Iterable[str] = (), current: Iterable[str] = (),
             overdue: Iterable[str] = ()) -> str | None:
    """A procedure definition's chart with a case's path (:func:`render_svg`, titled with its name),
    or None when it has no drawable diagram. Cached by the definition's content hash and the path:
    the trail, the step page and the public case page draw it on every request, and many cases
    share a path (rendering is most of those pages' time)."""
    return _path_svg(d.content_hash, tuple(sorted(nodes)), tuple(sorted(flows)), tuple(sorted(current)),
                     tuple(sorted(overdue)), _Carrier(d))


class _Carrier:
    """Carries the definition into the cache without being part of its key."""

    def __init__(self, d):
        self.d = d

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Carrier)


@lru_cache(maxsize=1024)
def _path_svg(content_hash: str, nodes: tuple, flows: tuple, current: tuple, overdue: tuple,
              carrier: _Carrier) -> str | None:
    try:
        return render_svg(carrier.d.root, visited_nodes=nodes, visited_flows=flows, current=current,
                          overdue=overdue, title=carrier.d.name)
    except DiagramError:
        return None


def render_svg_bytes(xml: bytes, **kw: object) -> str:
    """Parse BPMN XML with a safe parser and render it with :func:`render_svg`.

    :raises DiagramError: when the XML cannot be parsed or has no diagram interchange.
    """
    from engine.core.xmlsafe import UnsafeXml, parse_xml

    try:
        root = parse_xml(xml)
    except UnsafeXml as exc:
        raise DiagramError(f"BPMN 文件无法解析 / cannot parse BPMN XML: {exc}") from exc
    return render_svg(root, **kw)  # type: ignore[arg-type]
