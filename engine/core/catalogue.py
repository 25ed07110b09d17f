"""The fixed registries beside the BPMN files: roles and categories (processes/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from engine import settings


def processes_dir() -> Path:
    """Where the procedure library lives (``XIAOWEI_PROCESSES`` overrides)."""
    return settings.current().processes_dir


@dataclass(frozen=True)
class Role:
    key: str
    zh: str
    en: str
    level: str


@dataclass(frozen=True)
class Category:
    code: str
    zh: str
    en: str


@lru_cache(maxsize=1)
def roles() -> dict[str, Role]:
    """Role key → role, in registry order."""
    data = yaml.safe_load((processes_dir() / "roles.yaml").read_text(encoding="utf-8"))
    return {r["key"]: Role(r["key"], r["zh"], r["en"], r.get("level", "village")) for r in data}


def role_zh(key: str | None, missing: str = "") -> str:
    """A role key's Chinese name (the key itself if unregistered; ``missing`` if there is none)."""
    if not key:
        return missing
    role = roles().get(key)
    return role.zh if role else key


@lru_cache(maxsize=1)
def categories() -> dict[str, Category]:
    """Category code → category, in handbook order."""
    data = yaml.safe_load((processes_dir() / "categories.yaml").read_text(encoding="utf-8"))
    return {c["code"]: Category(c["code"], c["zh"], c["en"]) for c in data}


# Roles whose holders administer cases in their area (cancel with a reason, inspect).
ADMIN_ROLES = frozenset({"township_staff", "township_government", "district_admin"})
# Roles whose holders may complete an applicant's step on the applicant's behalf (代办).
PROXY_ROLES = frozenset({"committee", "grid_worker", "handler"})
# Roles that supervise: they may read every case in their area.
SUPERVISOR_ROLES = frozenset({
    "supervision_committee", "liaison_station", "township_discipline", "supervision_office",
})
