"""The dashboard's figures, cached (#12): computing them reads every step-opening and step-completing
event of the scope's cases (``analysis.completed_steps``, twice: the dashboard and the grades), which
grows with the history; the cache answers in a few statements instead.

Validity: each township (the organization above a village; an organization that is not a village is
its own) has a version in ``dashboard_version``. A cached entry records the versions of its
townships it was computed at and stands only while they are unchanged:

* the outbox worker moves the version of a changed case's township in the transaction that marks the
  case's outbox rows done (:func:`touch_case`, called from :mod:`engine.services.worker`): once the
  worker ran, the dashboard shows the change;
* storing new warnings and handling a warning move the versions of the warnings' townships in their
  own transaction (:func:`touch`), so the time-based rules of ``tick`` and 签收/办结 show at once.

The versions are read before the figures, so an entry computed while a change committed carries the
older version and is recomputed at the next request, never kept stale. Since the passing of time alone
changes some figures (open steps becoming overdue, the month), an entry also expires after
:data:`MAX_AGE` (engine clock).
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core import audit
from storage.db import dialect_insert
from storage.models import Case, DashboardCache, DashboardVersion, Organization

from . import analysis

if TYPE_CHECKING:
    from storage import Database

log = logging.getLogger("xiaowei.dashboard")

MAX_AGE = timedelta(minutes=5)


def _upsert(session: Session, model):
    return dialect_insert(session.get_bind().dialect.name)(model)


def townships(session: Session, org_ids: Iterable[int]) -> set[int]:
    """The townships of these organizations: a village's parent, any other organization itself."""
    ids = set(org_ids)
    if not ids:
        return set()
    return {parent if kind in analysis.VILLAGE_KINDS and parent is not None else oid
            for oid, kind, parent in session.execute(
                select(Organization.id, Organization.kind, Organization.parent_id).where(Organization.id.in_(ids)))}


def touch(session: Session, org_ids: Iterable[int]) -> None:
    """Move the dashboard versions of the townships of ``org_ids`` (in the caller's transaction)."""
    for town in sorted(townships(session, org_ids)):  # one order: no deadlock between two workers
        statement = _upsert(session, DashboardVersion).values(org_id=town, version=1)
        session.execute(statement.on_conflict_do_update(index_elements=["org_id"],
                                                        set_={"version": DashboardVersion.version + 1}))


def touch_case(session: Session, case_id: int | None) -> None:
    """A case changed: its township's cached dashboard figures are stale."""
    if case_id is None:
        return
    org_id = session.scalar(select(Case.org_id).where(Case.id == case_id))
    if org_id is not None:
        touch(session, {org_id})


def _versions(session: Session, towns: set[int]) -> str:
    found = dict(session.execute(select(DashboardVersion.org_id, DashboardVersion.version)
                                 .where(DashboardVersion.org_id.in_(towns or {-1}))).all())
    return json.dumps({str(t): found.get(t, 0) for t in sorted(towns)}, separators=(",", ":"))


def compute(session: Session, org_ids: set[int], *, months: int, month: str) -> dict:
    """The figures themselves (uncached): ``analysis.dashboard`` and the month's village grades."""
    data = analysis.dashboard(session, org_ids, months=months)
    data["grades"] = analysis.grades(session, month, {o.id for o in analysis.villages_in(session, org_ids)})
    return json.loads(json.dumps(data))  # the same plain JSON types whether computed or cached


def dashboard_figures(db: "Database", org_ids: set[int], *, months: int, month: str) -> dict:
    """The figures of the dashboard of ``org_ids`` (``months`` of trend, the grades of ``month``):
    from the cache while valid, else computed (in one read transaction) and stored."""
    with db.read() as s:
        villages = sorted(o.id for o in analysis.villages_in(s, org_ids))
        versions = _versions(s, townships(s, villages))
        now = audit.db_time()
        key = hashlib.sha256(json.dumps({"villages": villages, "months": months, "month": month,
                                         "now_month": analysis.parse_month(None, now)}).encode()).hexdigest()
        row = s.get(DashboardCache, key)
        if row is not None and row.versions == versions and timedelta(0) <= now - row.computed_at < MAX_AGE:
            return json.loads(row.figures)
        figures = compute(s, set(org_ids), months=months, month=month)
    try:
        with db.write() as s:
            text = json.dumps(figures, ensure_ascii=False, separators=(",", ":"))
            statement = _upsert(s, DashboardCache).values(key=key, versions=versions, figures=text, computed_at=now)
            s.execute(statement.on_conflict_do_update(index_elements=["key"], set_={
                "versions": versions, "figures": text, "computed_at": now}))
    except Exception:  # noqa: BLE001 - the cache is an optimisation: the page has its figures anyway
        log.exception("could not store the dashboard figures")
    return figures
