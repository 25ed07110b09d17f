"""Keys made from Chinese names, for people who write step tables without programming: a form
field labelled 支出事由 gets the key ``zhichu_shiyou`` (pinyin through pypinyin, words joined by
``_``), a step named 审核 the id ``shenhe``. Keys follow the step table's rule (a letter first, then
letters, digits and ``_``, at most :data:`MAX_LEN`), and are unique among ``taken``.

Time limits are chosen as a number and a unit (:data:`UNITS`): :func:`time_limit` writes ``5wd``,
:func:`split_time_limit` reads it back."""

from __future__ import annotations

import re
from typing import Iterable

MAX_LEN = 40
UNITS = {"wd": "工作日", "d": "天", "h": "小时"}  # the step table's units, as township staff say them
_TIME = re.compile(r"^(\d{1,3})(wd|d|h)$")
_SAFE = re.compile(r"[^a-z0-9]+")


def _syllables(text: str) -> list[str]:
    """Pinyin of the Chinese in ``text`` (without tones), with Latin letters and digits kept as words."""
    from pypinyin import Style, lazy_pinyin

    return [w for part in lazy_pinyin(text, style=Style.NORMAL, errors="default")
            for w in _SAFE.sub(" ", part.lower()).split()]


def key_from_label(label: str, taken: Iterable[str] = (), *, fallback: str = "field") -> str:
    """A key for ``label``: its pinyin joined by ``_`` (支出事由 → zhi_chu_shi_you), unique among
    ``taken`` (``_2``, ``_3`` … appended), ``fallback`` when the label has nothing to spell."""
    words = _syllables(label or "")
    key = ""
    for w in words:
        candidate = f"{key}_{w}" if key else w
        if len(candidate) > MAX_LEN - 3:
            break
        key = candidate
    if not key:
        key = fallback
    if not key[0].isalpha():
        key = f"{fallback[0]}_{key}"[: MAX_LEN - 3]
    used = set(taken)
    unique, n = key, 2
    while unique in used:
        unique, n = f"{key}_{n}", n + 1
    return unique


def time_limit(number: str | int | None, unit: str | None) -> str:
    """``5`` + ``wd`` → ``5wd``; no number (or 0): no time limit (``""``). Anything else is returned as
    typed for the table's check to refuse in words."""
    text = str(number or "").strip()
    if not text or text == "0":
        return ""
    return f"{text}{unit or 'd'}"


def split_time_limit(limit: str | None) -> tuple[str, str]:
    """``5wd`` → (``5``, ``wd``); no limit → (``""``, ``wd``)."""
    m = _TIME.match((limit or "").strip())
    return (m.group(1), m.group(2)) if m else ("", "wd")
