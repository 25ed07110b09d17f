"""镇街总览: for township staff and district administrators, every case in their villages by
procedure and status, the villages and procedures with overdue work first (the figures:
:mod:`engine.services.overview`)."""

from __future__ import annotations

from flask import Blueprint, abort, g, render_template

from engine.core.cases import STATUS_ZH
from engine.services.overview import may_see_overview, overview_rows

from webui.security import login_required, xw

bp = Blueprint("overview", __name__)

@bp.get("/overview")
@login_required
def index():
    if not may_see_overview(g.actor):
        abort(403)
    with xw().db.read() as s:
        rows = overview_rows(s, g.actor)
    totals = {key: sum(r[key] for r in rows) for key in ("overdue", "total", *STATUS_ZH)}
    villages = sorted({(r["org"], r["org_name"]) for r in rows})
    return render_template("overview/index.html", rows=rows, totals=totals, villages=villages,
                           statuses=STATUS_ZH, closed=[k for k in STATUS_ZH if k not in ("running", "completed")])


@bp.app_context_processor
def _nav() -> dict:
    """``show_overview``: whether the nav offers 镇街总览 to the signed-in user."""
    return {"show_overview": may_see_overview(g.get("actor"))}
