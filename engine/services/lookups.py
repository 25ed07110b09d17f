"""Single rows the pages look up by key (a case, an organization, a procedure) and the display names
of users: small reads that views need beside the page queries of :mod:`.reads`."""

from __future__ import annotations

from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Case, Organization, Procedure, User


def case(session: Session, case_id: int) -> Case | None:
    return session.get(Case, case_id)


def org(session: Session, org_id: int) -> Organization | None:
    return session.get(Organization, org_id)


def procedure(session: Session, procedure_id: str) -> Procedure | None:
    return session.get(Procedure, procedure_id)


def display_names(session: Session, usernames: Iterable[str]) -> dict[str, str]:
    """username → display name, for the users among ``usernames`` that exist."""
    names = {u for u in usernames if u}
    if not names:
        return {}
    return dict(session.execute(select(User.username, User.display_name).where(User.username.in_(names))).all())
