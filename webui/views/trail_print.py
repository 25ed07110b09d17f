"""A case's complete audit trail as a print-friendly page (A4, no navigation) and as a PDF printed
from that page by Chromium (:func:`engine.render.handbook.print_pdf`). Guarded exactly like the trail page."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from flask import Blueprint, Response, render_template

from engine.core import audit

from .cases import guard, trail_context
from webui.security import login_required, xw

bp = Blueprint("trail_print", __name__)


def trail_print_html(case_id: int, *, for_pdf: bool = False) -> str:
    case = guard(case_id, "export_trail" if for_pdf else "view_trail")
    context = trail_context(case, case_id)
    head = xw().trail_head(case_id)
    return render_template("cases/trail_print.html", **context, head=head,
                           printed_at=audit.iso(audit.db_time()), for_pdf=for_pdf)


@bp.get("/cases/<int:case_id>/trail/print")
@login_required
def page(case_id: int):
    return trail_print_html(case_id)


@bp.get("/cases/<int:case_id>/trail.pdf")
@login_required
def pdf(case_id: int):
    from engine.render.printing import print_pdf  # at most XIAOWEI_PDF_RENDERS at once, a short queue, else 503

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
