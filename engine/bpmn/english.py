"""The English of procedure content (the second language): step, field, option, lane and end names.

A step table may say it itself (``name_en`` on a step or end, ``label_en`` on a field, option or
lane, ``instructions_en`` on a step); otherwise the library's glossary ``processes/english.yaml``
(Chinese → English, one entry for a name used in many procedures) gives it. The generator writes
the result into the ``xw:`` extensions (``nameEn``, ``labelEn``, ``instructionsEn``), from which
the runtime reads it; a name neither gives has no English form and pages show the Chinese.

The glossary is a machine-made first draft awaiting a reviewer who knows the procedures; corrections
go into the glossary (or, for one procedure's wording, into its table)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

GLOSSARY = "english.yaml"
SUPERVISED = "·监督"  # the generator names the supervision step of "X" "X·监督"


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, dict[str, str]]:
    file = Path(path)
    if not file.exists():
        return {}
    data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    return {str(name): {str(k): str(v) for k, v in section.items() if v}
            for name, section in (data.items() if isinstance(data, dict) else ()) if isinstance(section, dict)}


def sections(directory: Path | None = None) -> dict[str, dict[str, str]]:
    """The glossary by kind of name (``steps``, ``fields``, ``options``, ``lanes``, ``ends``, ``units``)."""
    if directory is None:
        from engine.core.catalogue import processes_dir

        directory = processes_dir()
    return _load(str(Path(directory) / GLOSSARY))


def glossary(kind: str | None = None) -> dict[str, str]:
    """Chinese → English of one kind of name, or of every kind (``kind`` None; a name of two kinds
    keeps the English of the later section)."""
    found = sections()
    if kind is not None:
        return found.get(kind, {})
    merged: dict[str, str] = {}
    for terms in found.values():
        merged.update(terms)
    return merged


def english(zh: Any, explicit: Any = None, kind: str | None = None) -> str | None:
    """The English of ``zh``: the table's own (``explicit``), else the glossary's (its ``kind`` of name
    first: a step and a field of the same Chinese may read differently); None without one."""
    if explicit:
        return str(explicit).strip()
    if not zh:
        return None
    own, everything = glossary(kind) if kind else {}, glossary()
    text = str(zh).strip()
    found = own.get(text) or everything.get(text)
    base = text[: -len(SUPERVISED)] if text.endswith(SUPERVISED) else None
    if not found and base and (own.get(base) or everything.get(base)):
        found = f"{own.get(base) or everything[base]} — supervision"  # the generated supervision of a step
    return found or None


@lru_cache(maxsize=4)
def _procedure_names(directory: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in sorted((Path(directory) / "tables").glob("*.yaml")):
        try:
            table = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError:
            continue
        if isinstance(table, dict) and table.get("id") and table.get("name_en"):
            out[str(table["id"])] = str(table["name_en"])
    return out


def procedure_name(procedure_id: str) -> str | None:
    """The English name of a library procedure (its step table's ``name_en``), None for others."""
    from engine.core.catalogue import processes_dir

    return _procedure_names(str(processes_dir())).get(str(procedure_id or "")) or None
