"""The dashboard's cached figures (#12): served from the cache while nothing changed, made stale by
the outbox worker in the transaction that marks a changed case done, by a handled warning at once, and
the same figures whether computed or cached."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from engine.core import directory
from engine.services import worker
from engine.services.facade import Xiaowei
from engine.services.supervision import analysis, figures
from storage.models import DashboardCache, DashboardVersion, Organization, OutboxEntry
from supervision_helpers import build_history, do
from web_helpers import login


def _kpi(html: str, name: str) -> str:
    return re.search(rf'id="kpi-{name}">([^<]*)<', html).group(1)


def test_a_completed_step_changes_the_dashboard_after_the_worker_ran(app, xw, people, frozen):
    made = build_history(xw, people, frozen)
    client = login(app, people["township_discipline"])
    assert _kpi(client.get("/dashboard").text, "ontime") == "50%"  # quick on time, slow late
    with xw.db.read() as s:
        assert s.scalar(select(func.count()).select_from(DashboardCache)) == 1

    # The step is completed with the follow-up work left to the worker (as under `xiaowei serve`).
    deferred = Xiaowei(xw.db, inline_background=False)
    do(deferred, made["stuck"], "collect", people)  # after its time limit: late
    with xw.db.read() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEntry).where(OutboxEntry.done_at.is_(None))) > 0
    assert _kpi(client.get("/dashboard").text, "ontime") == "50%"  # the worker has not run: cached figures

    done = worker.drain(deferred)
    assert done["cases"] >= 1 and done["failed"] == 0
    html = client.get("/dashboard").text
    assert _kpi(html, "ontime") == "33%"  # 1 of 3 on time
    with xw.db.read() as s:
        assert s.scalar(select(func.count()).select_from(OutboxEntry).where(OutboxEntry.done_at.is_(None))) == 0


def test_a_handled_warning_changes_the_dashboard_at_once(app, xw, people, frozen):
    build_history(xw, people, frozen)
    client = login(app, people["township_discipline"])
    assert _kpi(client.get("/dashboard").text, "red") == "1"
    red = next(w for w in xw.list_warnings()["warnings"] if w["severity"] == "red")
    xw.handle_warning(red["id"], "dismiss", people["township_discipline"], "经核实为误报")
    assert _kpi(client.get("/dashboard").text, "red") == "0"


def test_cached_figures_equal_computed_ones_and_expire(xw, people, frozen):
    build_history(xw, people, frozen)
    with xw.db.read() as s:
        actor = directory.load_actor(s, people["township_discipline"])
        ids = analysis.dashboard_scope(s, actor)
        month = analysis.parse_month(None)
        fresh = figures.compute(s, ids, months=12, month=month)
    first = figures.dashboard_figures(xw.db, ids, months=12, month=month)
    cached = figures.dashboard_figures(xw.db, ids, months=12, month=month)
    assert first == fresh == cached and cached["villages"] and cached["grades"]
    with xw.db.read() as s:
        stored = s.scalar(select(DashboardCache.computed_at))
        towns = figures.townships(s, {v["org_id"] for v in cached["grades"]})
        kinds = set(s.scalars(select(Organization.kind).where(Organization.id.in_(towns))))
    assert towns and kinds == {"township"}  # the villages' township, never a village itself
    frozen.advance(minutes=6)  # older than MAX_AGE: computed again
    figures.dashboard_figures(xw.db, ids, months=12, month=month)
    with xw.db.read() as s:
        assert s.scalar(select(DashboardCache.computed_at)) > stored
        before = dict(s.execute(select(DashboardVersion.org_id, DashboardVersion.version)).all())
    with xw.db.write() as s:
        figures.touch(s, {v["org_id"] for v in cached["grades"]})
    with xw.db.read() as s:
        after = dict(s.execute(select(DashboardVersion.org_id, DashboardVersion.version)).all())
    assert set(after) == towns and all(after[t] == before.get(t, 0) + 1 for t in towns)
