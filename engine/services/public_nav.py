"""Where a villager goes from any public page: the township board (its villages' and communities'
boards), the index of all boards, and the board an error page leads back to. Read-only, no login."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core import cases
from storage.models import Case, Organization

BOARD_KINDS = ("village", "community")
TOWNSHIP_KINDS = ("township", "street")


def _children(session: Session, parent_id: int, kinds: tuple[str, ...]) -> list[Organization]:
    return list(session.scalars(select(Organization).where(Organization.parent_id == parent_id,
                                                           Organization.kind.in_(kinds))
                                .order_by(Organization.code)))


def _item(org: Organization) -> dict[str, str]:
    return {"code": org.code, "name": org.name, "kind": org.kind}


def township(session: Session, code: str) -> dict[str, Any] | None:
    """A township (or street, or a district) and the boards under it, or None for any other code."""
    org = session.scalar(select(Organization).where(Organization.code == code))
    if org is None or org.kind not in TOWNSHIP_KINDS + ("district",):
        return None
    if org.kind == "district":
        groups = [{"org": _item(t), "boards": [_item(b) for b in _children(session, t.id, BOARD_KINDS)]}
                  for t in _children(session, org.id, TOWNSHIP_KINDS)]
    else:
        groups = [{"org": _item(org), "boards": [_item(b) for b in _children(session, org.id, BOARD_KINDS)]}]
    return {"org": _item(org), "groups": groups}


def index(session: Session) -> list[dict[str, Any]]:
    """Every township with the boards under it (townships without boards left out)."""
    groups = []
    for town in session.scalars(select(Organization).where(Organization.kind.in_(TOWNSHIP_KINDS))
                                .order_by(Organization.code)):
        boards = [_item(b) for b in _children(session, town.id, BOARD_KINDS)]
        if boards:
            groups.append({"org": _item(town), "boards": boards})
    return groups


def home(session: Session, view_args: Mapping[str, Any] | None) -> dict[str, str] | None:
    """The board (or township page) a public page belongs to, from its URL's organization or case
    code; None when neither names one (the error page then leads to the index of boards)."""
    args = view_args or {}
    code = args.get("org_code")
    org = None
    if isinstance(code, str) and code:
        org = session.scalar(select(Organization).where(Organization.code == code))
    tracking = args.get("code")
    if org is None and isinstance(tracking, str) and tracking:
        try:
            normal = cases.normalize_tracking_code(tracking)
        except Exception:  # noqa: BLE001 - a malformed code names no board
            normal = None
        if normal:
            case = session.scalar(select(Case).where(Case.tracking_code == normal))
            org = session.get(Organization, case.org_id) if case is not None else None
    if org is None or org.kind not in BOARD_KINDS + TOWNSHIP_KINDS + ("district",):
        return None
    return _item(org)
