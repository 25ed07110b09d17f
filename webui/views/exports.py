"""Downloads of the lists people work from in Excel: the case search (事项查询) and the warnings inbox
(预警), with the same filters and permissions as their pages, as CSV and as .xlsx (the dashboard's
tables download from :mod:`webui.views.dashboard`). Times in Beijing time, said in the header."""

from __future__ import annotations

from flask import Blueprint, abort, g, request

from engine.core import cases as engine_cases
from engine.render.narrative import language
from engine.services import reads
from engine.services.supervision import explain

from . import sheets
from .cases import parse_case_query
from .warnings import require_reader, rule_name, severity_name, status_name, warning_list
from webui import filters
from webui.i18n import current, gettext as _, pgettext
from webui.security import login_required, xw

bp = Blueprint("exports", __name__)
MAX_ROWS = 5000  # one download; beyond it, narrow the filters
FORMATS = ("csv", "xlsx")


def _status(key: str) -> str:
    names = {"running": _("办理中"), "completed": _("已办结"), "rejected": _("未通过"), "terminated": _("已终止"),
             "cancelled": _("已撤销")}
    return names.get(key, engine_cases.STATUS_ZH.get(key, key))


@bp.get("/cases/export.<fmt>")
@login_required
def cases(fmt: str):
    """The case search as a file: the filters of ``/cases`` (``scope=all`` for a supervisor's area)."""
    if fmt not in FORMATS:
        abort(404)
    search = reads.is_supervisor(g.actor) and request.args.get("scope") == "all"
    q, _raw, errors = parse_case_query(request.args, search=search)
    if errors:
        abort(422)
    q.page, q.per_page = 1, MAX_ROWS
    rows, _total = xw().read(reads.search_cases, g.actor, q)
    table = [[_("查询码"), _("标题"), _("事项编号"), _("流程"), _("村(社区)"), _("状态"), _("发起时间(北京时间)"),
              _("更新时间(北京时间)")]]
    table += [[c["tracking_code"], c["title"], c["procedure_id"], c["procedure_name"], c["org_name"], _status(c["status"]),
               filters.china_time(c["created_at"]), filters.china_time(c["updated_at"])] for c in rows]
    return sheets.download(table, "cases", fmt, title=_("事项查询"))


@bp.get("/warnings/export.<fmt>")
@login_required
def warnings(fmt: str):
    """The warnings inbox as a file (the filters of ``/warnings``; every page, up to the limit)."""
    if fmt not in FORMATS:
        abort(404)
    require_reader()
    data, _f = warning_list({**request.args.to_dict(), "page": "1"}, limit=MAX_ROWS)
    with language(current()):
        xw().read(explain.explain_many, data["warnings"])
    table = [[_("编号"), _("颜色"), _("规则"), _("内容"), pgettext("case", "事项"), _("流程"), _("村(社区)"),
              _("涉及人员"), _("状态"), _("发现时间(北京时间)"), _("处理意见")]]
    for w in data["warnings"]:
        words = w["words"]
        case = words["case"] or {}
        people = _("、").join(p["name"] + (f"({_('、').join(p['roles'])})" if p["roles"] else "")
                              for p in words["people"])
        table.append([w["id"], severity_name(w["severity"]), rule_name(w["rule"], w["rule_zh"]), words["summary"],
                      case.get("title", ""), case.get("procedure_name", ""), case.get("village") or w["org_name"],
                      people, status_name(w["status"]), filters.china_time(w["raised_at"]), w["opinion"]])
    return sheets.download(table, "warnings", fmt, title=_("预警"))
