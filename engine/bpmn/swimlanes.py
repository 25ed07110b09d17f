"""The swimlane layout of generated procedures: lanes as columns, the flow from top to bottom.

This is how the handbooks of small and micro power draw a procedure: one column per role (its name
at the head of the column), the steps one under the other in the order they are done, so that a
procedure of about fifteen steps fits one A4 portrait page. Everything is on an integer grid (the
positions in ``processes/*.bpmn`` follow from it, so a change here goes with ``make tables``).

* **Ranks** (rows) come from the longest path over forward flows (to nodes created later); a node
  whose cell in its lane is taken moves down to the next free rank. Each rank is as tall as its
  tallest node, and the gap above it as tall as the horizontal runs that cross it need.
* **Forward flows** leave a node at its bottom and enter the next at its top: straight down in one
  lane, across a gap between ranks to another lane, or down the left corridor of the target lane
  when the cells between are taken.
* **Back flows** (returns, corrections) leave a node at its right side, run along the right
  corridor of the lanes and enter the target from its right: they never cut across the steps.
* Lanes widen when many flows share their corridors: the flows are routed once to count corridor
  and gap use, the lanes and gaps are sized, and the flows are routed again on the final geometry.

Labels of events and gateways sit to the left of their shape (the flow runs through the top and
bottom, returns leave to the right). :mod:`engine.services.editing` lays out imported documents
without a diagram with the same class.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

POOL_HEAD = 30  # the pool's name band across the top
LANE_HEAD = 36  # each lane's name band at the head of its column
CONTENT_Y = POOL_HEAD + LANE_HEAD
LANE_W = 140  # a lane column (grows with its corridors)
BOTTOM_MARGIN = 24
SIZES = {"task": (100, 46), "gateway": (34, 34), "start": (28, 28), "end": (28, 28),
         "timer": (28, 28)}
LABEL_LINE_H = 14
LABEL_MAX_W = 48  # labels left of an event or gateway
CORRIDOR_STEP = 6
GAP_QUIET = 16  # a gap that only straight arrows pass
GAP_BASE = 24  # a gap crossed by one horizontal run
GAP_STEP = 6  # and every further run
GAP_OFFSETS = (0, 6, -6, 12, -12, 18, -18, 24, -24, 30, -30)
TASK_ENTRY_OFFSETS = (0, 10, -10, 18, -18, 5, -5, 14, -14)

Point = tuple[int, int]


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle in diagram coordinates."""

    x: int
    y: int
    w: int
    h: int

    @property
    def cx(self) -> int:
        return self.x + self.w // 2

    @property
    def cy(self) -> int:
        return self.y + self.h // 2

    def overlaps(self, other: "Box") -> bool:
        """True when the interiors of the two boxes intersect."""
        return (self.x < other.x + other.w and other.x < self.x + self.w
                and self.y < other.y + other.h and other.y < self.y + self.h)


@dataclass
class Layout:
    """Diagram geometry: pool, lanes, node shapes and labels, edge waypoints and labels."""

    pool: Box
    lanes: dict[str, Box]
    lane_labels: dict[str, Box]
    shapes: dict[str, Box]
    labels: dict[str, Box]
    edges: dict[str, list[Point]]
    edge_labels: dict[str, Box]
    horizontal: bool = False  # lanes as columns (BPMN DI isHorizontal="false")


def text_width(text: str) -> int:
    """Approximate rendered width in pixels (12px for CJK characters, 7px otherwise)."""
    return sum(12 if ord(char) > 0x2E7F else 7 for char in text)


def label_box(text: str, cx: int, top: int, max_width: int = 100) -> Box:
    width = max(text_width(text), 12)
    lines = math.ceil(width / max_width)
    width = min(width, max_width)
    return Box(cx - width // 2, top, width, lines * LABEL_LINE_H)


class Layouter:
    """Places nodes on a lane (column) × rank (row) grid and routes flows orthogonally.

    ``graph`` has ``nodes`` (id → node with ``id``, ``kind``, ``name``, ``lane``, ``order``) and
    ``flows`` (with ``id``, ``source``, ``target``, ``name``).
    """

    def __init__(self, graph: Any, lanes: Sequence[str], labels: Mapping[str, str]) -> None:
        self.graph = graph
        self.lane_index = {role: index for index, role in enumerate(lanes)}
        self.lane_names = labels
        self.ranks: dict[str, int] = {}
        self.cells: dict[tuple[int, int], str] = {}
        self.lefts = [index * LANE_W for index in range(len(lanes) + 1)]
        self.centres = [left + LANE_W // 2 for left in self.lefts]
        self.gap_h: dict[int, int] = {}
        self.tops: list[int] = []  # top of the node band of each rank (below its gap)
        self.heights: list[int] = []
        self.shapes: dict[str, Box] = {}
        self.reset_routing()

    def reset_routing(self) -> None:
        self.gap_use: dict[int, list[tuple[int, int, int, str]]] = {}
        self.corridor_use: dict[tuple[int, str], int] = {}
        self.entry_use: dict[str, int] = {}

    def run(self) -> Layout:
        self.assign_ranks()
        self.size_ranks()
        self.place_shapes()
        for flow in self.graph.flows:
            self.route(flow)
        self.size_lanes()
        self.size_gaps()
        self.size_ranks()
        self.reset_routing()
        self.place_shapes()
        edges = {flow.id: self.route(flow) for flow in self.graph.flows}
        return self.result(edges)

    def result(self, edges: dict[str, list[Point]]) -> Layout:
        labels = {node.id: self.node_label(node, self.shapes[node.id])
                  for node in self.graph.nodes.values() if node.kind != "task" and node.name}
        width = self.lefts[-1]
        height = self.tops[-1] + self.heights[-1] + BOTTOM_MARGIN if self.tops else CONTENT_Y
        pool = Box(0, 0, width, height)
        edge_labels: dict[str, Box] = {}
        taken = list(self.shapes.values()) + list(labels.values())
        lines = [_segment_box(a, b) for points in edges.values() for a, b in zip(points, points[1:])]
        for flow in self.graph.flows:
            if flow.name:
                label = place_edge_label(flow.name, edges[flow.id], taken, pool, lines)
                edge_labels[flow.id] = label
                taken.append(label)
        lanes = {role: Box(self.lefts[index], POOL_HEAD, self.lefts[index + 1] - self.lefts[index],
                           height - POOL_HEAD)
                 for role, index in self.lane_index.items()}
        lane_labels = {role: self.lane_label(role, box) for role, box in lanes.items()}
        return Layout(pool, lanes, lane_labels, self.shapes, labels, edges, edge_labels)

    # -- grid -------------------------------------------------------------------------------

    def lane(self, node_id: str) -> int:
        return self.lane_index[self.graph.nodes[node_id].lane]

    def is_forward(self, flow: Any) -> bool:
        nodes = self.graph.nodes
        return nodes[flow.target].order > nodes[flow.source].order

    def assign_ranks(self) -> None:
        """Longest path over forward flows (to later-created nodes), then the next free cell."""
        predecessors: dict[str, list[str]] = {}
        for flow in self.graph.flows:
            if self.is_forward(flow):
                predecessors.setdefault(flow.target, []).append(flow.source)
        for node in sorted(self.graph.nodes.values(), key=lambda item: item.order):
            before = [self.ranks[pred] for pred in predecessors.get(node.id, [])]
            rank = max(before) + 1 if before else (0 if node.kind == "start" else 1)
            while (self.lane_index[node.lane], rank) in self.cells:
                rank += 1
            self.ranks[node.id] = rank
            self.cells[(self.lane_index[node.lane], rank)] = node.id

    def size_ranks(self) -> None:
        """Each rank as tall as its tallest node, below a gap sized by the runs crossing it."""
        count = max(self.ranks.values()) + 1
        heights = [0] * count
        for node in self.graph.nodes.values():
            rank = self.ranks[node.id]
            heights[rank] = max(heights[rank], SIZES[node.kind][1])
        tops, y = [], CONTENT_Y
        for rank in range(count):
            y += self.gap_h.get(rank, GAP_BASE if rank else GAP_QUIET)
            tops.append(y)
            y += heights[rank]
        self.tops, self.heights = tops, heights

    def size_gaps(self) -> None:
        """Give every gap room for the horizontal runs the first routing put in it."""
        for rank in range(len(self.tops)):
            used = {offset for _, _, offset, _ in self.gap_use.get(rank, [])}
            if not used:
                self.gap_h[rank] = GAP_QUIET
            else:
                spread = max(abs(offset) for offset in used)
                self.gap_h[rank] = max(GAP_BASE, 2 * spread + GAP_BASE - GAP_STEP)

    def size_lanes(self) -> None:
        """Give every lane room for the corridors its flows use (at least ``LANE_W``)."""
        left = 0
        for lane in range(len(self.lane_index)):
            extra_left = CORRIDOR_STEP * max(0, self.corridor_use.get((lane, "left"), 0) - 2)
            extra_right = CORRIDOR_STEP * max(0, self.corridor_use.get((lane, "right"), 0) - 2)
            self.lefts[lane] = left
            self.centres[lane] = left + LANE_W // 2 + extra_left
            left += LANE_W + extra_left + extra_right
        self.lefts[len(self.lane_index)] = left

    def place_shapes(self) -> None:
        for node in self.graph.nodes.values():
            width, height = SIZES[node.kind]
            rank = self.ranks[node.id]
            cx = self.centres[self.lane(node.id)]
            cy = self.tops[rank] + self.heights[rank] // 2
            self.shapes[node.id] = Box(cx - width // 2, cy - height // 2, width, height)

    def node_label(self, node: Any, box: Box) -> Box:
        label = label_box(node.name or "", 0, 0, LABEL_MAX_W)
        return Box(box.x - 4 - label.w, box.cy - label.h // 2, label.w, label.h)

    def lane_label(self, role: str, lane: Box) -> Box:
        label = label_box(self.lane_names[role], lane.cx, 0, lane.w - 16)
        return Box(label.x, lane.y + (LANE_HEAD - label.h) // 2, label.w, label.h)

    # -- routing ----------------------------------------------------------------------------

    def gap_y(self, rank: int) -> int:
        """The y of the middle of the free gap just above ``rank``."""
        return self.tops[rank] - self.gap_h.get(rank, GAP_BASE) // 2

    def free_between(self, lane: int, first: int, last: int) -> bool:
        return all((lane, rank) not in self.cells for rank in range(first, last + 1))

    def claim_gap(self, rank: int, x1: int, x2: int, flow: Any) -> int:
        """A y in the gap above ``rank`` whose horizontal run overlaps no other source's flow."""
        low, high = min(x1, x2), max(x1, x2)
        used = self.gap_use.setdefault(rank, [])
        for offset in GAP_OFFSETS:
            clash = any(offset == other_offset and low <= other_high and other_low <= high
                        and flow.source != source
                        for other_low, other_high, other_offset, source in used)
            if not clash:
                used.append((low, high, offset, flow.source))
                return self.gap_y(rank) + offset
        return self.gap_y(rank)

    def corridor_x(self, lane: int, side: str) -> int:
        """A vertical corridor along the left or right edge of ``lane``, one per flow."""
        count = self.corridor_use.get((lane, side), 0)
        self.corridor_use[(lane, side)] = count + 1
        if side == "left":
            return self.lefts[lane] + 10 + CORRIDOR_STEP * count
        return self.lefts[lane + 1] - 10 - CORRIDOR_STEP * count

    def entry_y(self, target: str) -> int:
        """Where a back flow enters ``target`` from the right; tasks spread several entries."""
        count = self.entry_use.get(target, 0)
        self.entry_use[target] = count + 1
        box = self.shapes[target]
        if self.graph.nodes[target].kind != "task":
            return box.cy
        return box.cy + TASK_ENTRY_OFFSETS[count % len(TASK_ENTRY_OFFSETS)]

    def route(self, flow: Any) -> list[Point]:
        source, target = self.shapes[flow.source], self.shapes[flow.target]
        if self.ranks[flow.target] > self.ranks[flow.source]:
            return self.route_forward(flow, source, target)
        return self.route_back(flow, source, target)

    def route_forward(self, flow: Any, source: Box, target: Box) -> list[Point]:
        """Bottom border to top border: straight, one bend across a gap, or via a left corridor."""
        r1, r2 = self.ranks[flow.source], self.ranks[flow.target]
        l1, l2 = self.lane(flow.source), self.lane(flow.target)
        start, end = (source.cx, source.y + source.h), (target.cx, target.y)
        if l1 == l2 and self.free_between(l1, r1 + 1, r2 - 1):
            return [start, end]
        if l1 != l2 and self.free_between(l1, r1 + 1, r2 - 1):
            y = self.claim_gap(r2, start[0], end[0], flow)
            return [start, (start[0], y), (end[0], y), end]
        if l1 != l2 and self.free_between(l2, r1 + 1, r2 - 1):
            y = self.claim_gap(r1 + 1, start[0], end[0], flow)
            return [start, (start[0], y), (end[0], y), end]
        corridor = self.corridor_x(l2, "left")
        y1 = self.claim_gap(r1 + 1, start[0], corridor, flow)
        y2 = self.claim_gap(r2, corridor, end[0], flow)
        return [start, (start[0], y1), (corridor, y1), (corridor, y2), (end[0], y2), end]

    def route_back(self, flow: Any, source: Box, target: Box) -> list[Point]:
        """Leave the source to the right, run up the right corridors, enter the target from the right."""
        l1, l2 = self.lane(flow.source), self.lane(flow.target)
        start = (source.x + source.w, source.cy)
        end = (target.x + target.w, self.entry_y(flow.target))
        beside_source = self.corridor_x(l1, "right")
        if l1 == l2:
            return [start, (beside_source, start[1]), (beside_source, end[1]), end]
        beside_target = self.corridor_x(l2, "right")
        y = self.claim_gap(self.ranks[flow.target], beside_source, beside_target, flow)
        return [start, (beside_source, start[1]), (beside_source, y), (beside_target, y),
                (beside_target, end[1]), end]


def _segment_box(a: Point, b: Point) -> Box:
    """The thin box a straight piece of a flow covers."""
    (x1, y1), (x2, y2) = a, b
    return Box(min(x1, x2) - 1, min(y1, y2) - 1, abs(x2 - x1) + 2, abs(y2 - y1) + 2)


def place_edge_label(text: str, points: Sequence[Point], taken: Sequence[Box], pool: Box,
                     lines: Sequence[Box] = ()) -> Box:
    """A flow's name as near its start as it fits: beside a vertical run (right, else left) or above
    or below a horizontal one, clear of every shape and label placed before, inside the pool, and if
    possible crossed by no line; when no such place exists, where :func:`edge_label` puts it."""
    inner = Box(pool.x + 2, pool.y + CONTENT_Y, pool.w - 4, pool.h - CONTENT_Y)

    def fits(box: Box, avoid_lines: bool) -> bool:
        inside = (box.x >= inner.x and box.y >= inner.y and box.x + box.w <= inner.x + inner.w
                  and box.y + box.h <= inner.y + inner.h)
        return inside and not any(box.overlaps(other) for other in taken) and not (
            avoid_lines and any(box.overlaps(line) for line in lines))

    for avoid_lines in (True, False):
        found = _search(text, points, lambda box: fits(box, avoid_lines))
        if found is not None:
            return found
    return unclash(edge_label(text, points), taken)


def _search(text: str, points: Sequence[Point], free: Callable[[Box], bool]) -> Box | None:
    """The first free place for a flow's name along its runs, from its start."""

    one_line = label_box(text, 0, 0, 150)
    two_lines = label_box(text, 0, 0, 76)
    for (x1, y1), (x2, y2) in zip(points, points[1:]):
        if x1 == x2:
            low, high = min(y1, y2), max(y1, y2)
            for size in (one_line, two_lines):
                for top in range(low + 2, max(low + 3, high - size.h - 1), 7):
                    for x in (x1 + 4, x1 - 4 - size.w):
                        box = Box(x, top, size.w, size.h)
                        if free(box):
                            return box
        else:
            low, high = min(x1, x2), max(x1, x2)
            if high - low < one_line.w + 8:
                continue
            starts = range(x1 + 4, x2 - one_line.w - 3, 12) if x2 > x1 else \
                range(x1 - 4 - one_line.w, x2 + 3, -12)
            for left in starts:
                for y in (y1 - 3 - one_line.h, y1 + 3):
                    box = Box(left, y, one_line.w, one_line.h)
                    if free(box):
                        return box
    return None


def edge_label(text: str, points: Sequence[Point]) -> Box:
    """Place a flow's name beside its first long vertical run, else above its longest run."""
    segments = list(zip(points, points[1:]))
    for (x1, y1), (x2, y2) in segments:
        if x1 == x2 and abs(y2 - y1) >= 2 * LABEL_LINE_H:
            label = label_box(text, 0, 0, 70)
            return Box(x1 + 4, (y1 + y2) // 2 - label.h // 2, label.w, label.h)
    (x1, y1), (x2, y2) = max(segments, key=lambda seg: abs(seg[1][0] - seg[0][0]))
    if x1 == x2:  # a short straight drop: beside it
        label = label_box(text, 0, 0, 70)
        return Box(x1 + 4, min(y1, y2), label.w, label.h)
    label = label_box(text, (x1 + x2) // 2, 0, max(abs(x2 - x1) - 6, 40))
    return Box(label.x, y1 - 3 - label.h, label.w, label.h)


def unclash(label: Box, placed: Iterable[Box]) -> Box:
    """Move ``label`` down until it overlaps no label placed before it."""
    placed = list(placed)
    for _ in range(10):
        if not any(label.overlaps(other) for other in placed):
            break
        label = Box(label.x, label.y + label.h + 2, label.w, label.h)
    return label
