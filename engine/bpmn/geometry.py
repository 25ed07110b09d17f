"""The geometry of drawn BPMN: boxes in diagram coordinates and the width of a line of text.

The SVG renderer (:mod:`engine.render.diagram`) and the handbook's sheet cutter
(:mod:`engine.render.handbook`) measure with these. The swimlane layout of step tables keeps its
integer grid (:func:`engine.bpmn.swimlanes.text_width`, 12 px a CJK character, 7 px otherwise): the
positions in processes/*.bpmn follow from it, so it changes only together with a regeneration of the
library.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle in diagram coordinates (x, y: top left; w, h: size)."""

    x: float
    y: float
    w: float
    h: float

    @classmethod
    def corners(cls, x0: float, y0: float, x1: float, y1: float) -> "Box":
        return cls(x0, y0, x1 - x0, y1 - y0)

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h

    # the corner names of the handbook's sheet cutter
    x0 = property(lambda self: self.x)
    y0 = property(lambda self: self.y)
    x1 = property(lambda self: self.x + self.w)
    y1 = property(lambda self: self.y + self.h)
    width = property(lambda self: self.w)
    height = property(lambda self: self.h)

    def meets(self, other: "Box") -> bool:
        """True when the interiors of the two boxes intersect."""
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1


def is_wide(ch: str) -> bool:
    """True for characters a CJK font draws full width (ambiguous ones such as · “ … too)."""
    return unicodedata.east_asian_width(ch) in ("W", "F", "A") and ord(ch) > 0x7F


def char_width(ch: str, size: float) -> float:
    """Approximate advance width of ``ch`` at font size ``size``."""
    if is_wide(ch):
        return size
    if ch == " ":
        return size * 0.3
    if ch in "il.,:;'|!()[]·":
        return size * 0.32
    if ch.isupper() or ch in "mwMW@%&":
        return size * 0.68
    return size * 0.55


def text_width(text: str, size: float) -> float:
    """Approximate width of one line of ``text`` at font size ``size``."""
    return sum(char_width(ch, size) for ch in text)
