"""A case's complete audit trail as a print-friendly page (A4, no navigation) and as a PDF printed
from that page by Chromium (:func:`engine.handbook.print_pdf`). Guarded exactly like the trail page."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from flask import Blueprint, Response, render_template
from sqlalchemy import select

from engine.diagram import DiagramError, render_svg
from engine.trailcheck import genesis
from engine import audit
from storage.models import Case, User

from . import reads
from .cases import guard
from .security import login_required, xw

bp = Blueprint("trail_print", __name__)


def trail_print_html(case_id: int, *, for_pdf: bool = False) -> str:
    case = guard(case_id, "export_trail" if for_pdf else "view_trail")
    info = xw().show_case(case_id)
    history = info["history"]
    with xw().db.read() as s:
        d = reads.definition(s, case.procedure_version_id)
        actors = {e["actor"] for e in history if e["actor"]}
        names = dict(s.execute(select(User.username, User.display_name).where(User.username.in_(actors))).all()) \
            if actors else {}
        row = s.get(Case, case_id)
        head = {"seq": row.audit_seq, "hash": row.audit_head or genesis(audit.case_chain(case_id))}
    reports = xw().verify(case_id)
    nodes, flows = reads.path_of(d, history)
    current = {i["step_id"] for i in info["current_steps"]} | {t["node"] for t in info["timers"]}
    try:
        svg = render_svg(d.root, visited_nodes=nodes, visited_flows=flows, current=current,
                         overdue={i["step_id"] for i in info["current_steps"] if i["overdue"]}, title=d.name)
    except DiagramError:
        svg = None
    return render_template("cases/trail_print.html", case=info, definition=d, events=history, names=names,
                           fields=d.fields_by_name(), verified=all(r.ok for r in reports),
                           problems=[p for r in reports for p in r.problems], svg=svg, head=head,
                           printed_at=audit.iso(audit.db_time()), for_pdf=for_pdf)


@bp.get("/cases/<int:case_id>/trail/print")
@login_required
def page(case_id: int):
    return trail_print_html(case_id)


@bp.get("/cases/<int:case_id>/trail.pdf")
@login_required
def pdf(case_id: int):
    from engine.handbook import print_pdf

    html = trail_print_html(case_id, for_pdf=True)
    fd, name = tempfile.mkstemp(prefix=f"trail-{case_id}-", suffix=".pdf")
    os.close(fd)
    path = Path(name)
    try:
        print_pdf(html, path, timeout_ms=60_000)
        body = path.read_bytes()
    finally:
        path.unlink(missing_ok=True)
    return Response(body, mimetype="application/pdf",
                    headers={"Content-Disposition": f"attachment; filename=trail-{case_id}.pdf"})
