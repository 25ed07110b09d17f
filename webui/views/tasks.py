"""我的待办: the ready steps the signed-in user can act on, across their villages."""

from __future__ import annotations

from flask import Blueprint, g, render_template, request

from engine.services import objection_reads, reads
from .cases import page_number
from webui.security import login_required, xw

bp = Blueprint("tasks", __name__)
PER_PAGE = 50


def task_filters() -> dict:
    return {"procedure": request.args.get("procedure") or None, "org": request.args.get("org") or None,
            "overdue": request.args.get("overdue") in ("1", "on", "true")}


@bp.get("/tasks")
@login_required
def index():
    f = task_filters()
    with xw().db.read() as s:
        rows = reads.my_tasks(s, g.actor, procedure=f["procedure"], org_code=f["org"], overdue=f["overdue"])
        everything = rows if not any(f.values()) else reads.my_tasks(s, g.actor)
        orgs = reads.visible_orgs(s, g.actor)
    procedures = sorted({(t.procedure_id, t.procedure_name) for t in everything})
    page, pages = page_number(request.args), max((len(rows) + PER_PAGE - 1) // PER_PAGE, 1)
    page = min(page, pages)
    keep = {k: ("1" if v is True else v) for k, v in f.items() if v}
    return render_template("tasks/index.html", rows=rows[(page - 1) * PER_PAGE:page * PER_PAGE], matched=len(rows),
                           total=len(everything), filters=f, procedures=procedures, orgs=orgs,
                           page=page, pages=pages, keep=keep,
                           overdue_count=sum(1 for t in everything if t.overdue),
                           objections=[o for o in xw().read(objection_reads.inbox, g.actor, verifier_only=True)
                                       if o["status"] in ("on_notice", "verifying")])
