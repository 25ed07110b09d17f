"""监督分析 (dashboards): per township and village — cases by procedure and status, on-time rate,
average and slowest steps, open warnings by colour and rule, monthly trends, village grades — as
server-rendered SVG charts, each with a CSV download (UTF-8 with BOM, so Excel opens the Chinese;
headers in the page's language, data as stored), and the heat map of a procedure's flowchart. Township staff and government, the township discipline
and supervision offices and district administrators see their area; a village's committee and
supervisors see their village. Figures: :mod:`engine.services.supervision.analysis`."""

from __future__ import annotations

from flask import Blueprint, abort, g, render_template, request
from markupsafe import Markup

from engine.core import directory
from engine.services.supervision import analysis as supervision, figures
from engine.core.errors import XiaoweiError

from . import charts, sheets
from .sheets import hours as hours_cell, pct as pct_cell
from webui.i18n import current, gettext as _, ngettext
from webui.security import login_required, xw

bp = Blueprint("dashboard", __name__)
STATUS_COLOURS = {"running": charts.COLOURS["blue"], "completed": charts.COLOURS["green"],
                  "rejected": charts.COLOURS["orange"], "terminated": charts.COLOURS["purple"],
                  "cancelled": charts.COLOURS["grey"]}
CHARTS = ("procedures", "villages", "ontime", "durations", "warnings", "rules", "trend", "grades")
TREND_RANGES = (6, 12, 24, 36)  # months the trend chart may cover


def _chart_titles() -> dict[str, str]:
    """The worksheet names of the Excel downloads, in the page's language."""
    return {"procedures": _("事项按流程和状态"), "villages": _("各村(社区)事项"), "ontime": _("按时办理率"),
            "durations": _("环节用时"), "warnings": _("未办结预警(按颜色)"), "rules": _("未办结预警(按规则)"),
            "trend": _("月度趋势"), "grades": _("村级监督评级")}


def _severity_series() -> list[tuple[str, str, str]]:
    return [("red", _("红色"), charts.COLOURS["red"]), ("yellow", _("黄色"), charts.COLOURS["yellow"]),
            ("blue", _("蓝色"), charts.COLOURS["blue"])]


def _status_names(statuses: dict[str, str]) -> dict[str, str]:
    """Case statuses (the engine's keys) named in the page's language."""
    names = {"running": _("办理中"), "completed": _("已办结"), "rejected": _("未通过"), "terminated": _("已终止"),
             "cancelled": _("已撤销")}
    return {k: names.get(k, v) for k, v in statuses.items()}


def _rule_name(rule_id: str, fallback: str) -> str:
    from .warnings import rule_name

    return rule_name(rule_id, fallback)


def format_hours(hours: float) -> str:
    """Like :func:`engine.services.supervision.analysis.format_hours` (the same Chinese), in the page's language."""
    if hours >= 48:
        return _("%(n)s天", n=f"{hours / 24:.1f}")
    if hours >= 1:
        return _("%(n)s小时", n=f"{hours:.1f}")
    return _("%(n)s分钟", n=f"{max(hours * 60, 0):.0f}")


def _require() -> None:
    if not supervision.may_see_dashboard(g.actor):
        abort(403)


def _scope(session) -> tuple[set[int], object | None]:
    """The organizations the page covers (the actor's scope, narrowed by ``?org=``) and that org."""
    scope = supervision.dashboard_scope(session, g.actor)
    code = (request.args.get("org") or "").strip()[:40]
    if not code:
        return scope, None
    try:
        org = directory.get_org(session, code)
    except XiaoweiError:
        abort(404)
    if org.id not in scope:
        abort(404)
    return directory.descendants(session, [org.id]) & scope, org


def _month() -> str:
    try:
        return supervision.parse_month(request.args.get("month") or None)
    except XiaoweiError:
        abort(422)


def _months() -> int:
    """The months the trend covers (``?months=``: one of :data:`TREND_RANGES`, else 12)."""
    try:
        months = int(request.args.get("months") or 12)
    except ValueError:
        return 12
    return months if months in TREND_RANGES else 12


def _data() -> dict:
    with xw().db.read() as s:
        ids, org = _scope(s)
        choices = supervision.orgs_in(s, supervision.dashboard_scope(s, g.actor))
    month, months = _month(), _months()
    data = figures.dashboard_figures(xw().db, ids, months=months, month=month)  # cached, invalidated by the worker
    data["month"] = month
    data["months"] = months
    data["org"] = {"code": org.code, "name": org.name, "kind": org.kind} if org else None
    data["choices"] = [(o.code, o.name, o.kind) for o in choices if o.kind != "district"]
    return data


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:.0%}"


def _charts(data: dict) -> dict[str, Markup]:
    statuses = _status_names(data["statuses"])
    status_series = [(k, v, STATUS_COLOURS.get(k, "#999")) for k, v in statuses.items()]
    severity_series = _severity_series()
    villages = data["villages"]
    durations = data["durations"][:10]
    return {
        "procedures": charts.stacked([(p["name"], p) for p in data["procedures"][:12]], status_series,
                                     title=_("事项按流程和状态")),
        "villages": charts.stacked([(v["name"], {k: v.get(k, 0) for k in statuses}) for v in villages],
                                   status_series, title=_("各村(社区)事项按状态")),
        "ontime": charts.hbars([(v["name"], v["rate"] or 0.0) for v in villages if v["with_due"]],
                               title=_("按时办理率"), colour=charts.COLOURS["green"], max_value=1.0,
                               fmt=lambda x: f"{x:.0%}"),
        "durations": charts.hbars([(f"{r['step_name']}·{r['procedure_name']}", r["avg_hours"]) for r in durations],
                                  title=_("平均用时最长的环节"), colour=charts.COLOURS["orange"],
                                  fmt=format_hours),
        "warnings": charts.stacked([(v["name"], v) for v in villages], severity_series,
                                   title=_("未办结预警(按颜色)")),
        "rules": charts.stacked([(f"{r['rule']} {_rule_name(r['rule'], r['name'])}", r) for r in data["rules"][:12]],
                                severity_series, title=_("未办结预警(按规则)")),
        "trend": charts.trend(data["trend"], [("started", _("新发起"), charts.COLOURS["blue"]),
                                              ("closed", _("已办结"), charts.COLOURS["green"])],
                              ("warnings", _("新预警"), charts.COLOURS["red"]), title=_("月度趋势")),
        "grades": charts.hbars([(_("%(name)s %(grade)s级", name=g_["org_name"], grade=g_["grade"]), g_["score"])
                                for g_ in data["grades"]],
                               title=_("村级监督评级"), colour=charts.COLOURS["teal"], max_value=100.0),
    }


@bp.get("/dashboard")
@login_required
def index():
    _require()
    data = _data()
    return render_template("dashboard/index.html", d=data, charts=_charts(data), pct=_pct,
                           hours=format_hours, q={"org": data["org"]["code"]} if data["org"] else {})


def _csv_rows(chart: str, d: dict) -> list[list]:
    """The rows of a chart's CSV; the headers in the page's language (the data as stored)."""
    statuses = _status_names(d["statuses"])
    if chart == "procedures":
        return [[_("事项编号"), _("事项名称"), *statuses.values(), _("合计")]] + [
            [p["procedure_id"], p["name"], *[p.get(k, 0) for k in statuses], p["total"]] for p in d["procedures"]]
    if chart == "villages":
        return [[_("镇(街道)"), _("村(社区)代码"), _("村(社区)"), *statuses.values(), _("合计"), _("超期待办"),
                 _("红色预警"), _("黄色预警"), _("蓝色预警"), _("按时"), _("超时"), _("按时率")]] + [
            [v["township"], v["org"], v["name"], *[v.get(k, 0) for k in statuses], v["cases"], v["overdue_open"],
             v["red"], v["yellow"], v["blue"], v["on_time"], v["late"], pct_cell(v["rate"])] for v in d["villages"]]
    if chart == "ontime":
        rows = [[_("范围"), _("名称"), _("有时限的已办环节"), _("按时"), _("超时"), _("按时率")]]
        rows += [[_("镇(街道)"), t["name"], t["with_due"], t["on_time"], t["with_due"] - t["on_time"],
                  pct_cell(t["rate"])] for t in d["townships"]]
        rows += [[_("村(社区)"), v["name"], v["with_due"], v["on_time"], v["late"], pct_cell(v["rate"])]
                 for v in d["villages"]]
        return rows
    if chart == "durations":
        return [[_("事项编号"), _("事项名称"), _("环节"), _("环节名称"), _("办理次数"), _("平均用时(小时)"),
                 _("最慢(小时)"), _("超时次数")]] + [
            [r["procedure_id"], r["procedure_name"], r["step"], r["step_name"], r["count"], hours_cell(r["avg_hours"]),
             hours_cell(r["max_hours"]), r["late"]] for r in d["durations"]]
    if chart == "warnings":
        return [[_("村(社区)代码"), _("村(社区)"), _("红色"), _("黄色"), _("蓝色")]] + [
            [v["org"], v["name"], v["red"], v["yellow"], v["blue"]] for v in d["villages"]]
    if chart == "rules":
        return [[_("规则"), _("名称"), _("红色"), _("黄色"), _("蓝色"), _("合计")]] + [
            [r["rule"], _rule_name(r["rule"], r["name"]), r["red"], r["yellow"], r["blue"], r["total"]] for r in d["rules"]]
    if chart == "trend":
        return [[_("月份"), _("新发起事项"), _("办结事项"), _("新预警")]] + [
            [m["month"], m["started"], m["closed"], m["warnings"]] for m in d["trend"]]
    if chart == "grades":
        return [[_("月份"), _("村(社区)代码"), _("村(社区)"), _("得分"), _("等级"), _("红色预警"), _("黄色预警"),
                 _("蓝色预警"), _("环节超时率"), _("季度财务公开逾期")]] + [
            [g_["month"], g_["org"], g_["org_name"], g_["score"], g_["grade"], g_["open_warnings"]["red"],
             g_["open_warnings"]["yellow"], g_["open_warnings"]["blue"], pct_cell(g_["overdue_rate"]),
             g_["disclosure_overdue"]] for g_ in d["grades"]]
    abort(404)


def _chart_file(chart: str, fmt: str):
    _require()
    if chart not in CHARTS:
        abort(404)
    data = _data()
    suffix = f"-{data['org']['code']}" if data["org"] else ""
    return sheets.download(_csv_rows(chart, data), f"dashboard-{chart}{suffix}", fmt, title=_chart_titles()[chart])


@bp.get("/dashboard/<chart>.csv")
@login_required
def chart_csv(chart: str):
    return _chart_file(chart, "csv")


@bp.get("/dashboard/<chart>.xlsx")
@login_required
def chart_xlsx(chart: str):
    """The chart's table as an Excel workbook (the same rows as the CSV)."""
    return _chart_file(chart, "xlsx")


@bp.get("/dashboard/heat/<procedure_id>")
@login_required
def heat(procedure_id: str):
    _require()
    with xw().db.read() as s:
        ids, org = _scope(s)
        data = supervision.heat(s, procedure_id, ids)
    if request.args.get("format") in ("csv", "xlsx"):
        rows = [[_("环节"), _("环节名称"), _("办理次数(含在办)"), _("在办"), _("平均等待(小时)"), _("最长(小时)"),
                 _("预警"), _("未办结预警")]] + [
            [r["step"], r["name"], r["count"], r["open"], hours_cell(r["avg_hours"]), hours_cell(r["max_hours"]),
             r["warnings"]["total"], r["warnings"]["open"]] for r in data["steps"]]
        return sheets.download(rows, f"heat-{procedure_id}", request.args["format"], title=_("热力图"))
    svg = Markup(supervision.heat_svg(
        data, title=_("%(name)s · 热力图", name=data["name"]),
        wait=lambda h: _("平均%(time)s", time=format_hours(h)),
        badge=lambda name, n, still_open: ngettext("%(name)s:预警%(num)s条(未办结%(open)s条)",
                                                   "%(name)s:预警%(num)s条(未办结%(open)s条)", n,
                                                   name=name, open=still_open),
        lang=current()))
    return render_template("dashboard/heat.html", d=data, svg=svg, org=org, hours=format_hours,
                           q={"org": org.code} if org else {})


@bp.app_context_processor
def _nav() -> dict:
    """``show_dashboard``: whether the nav offers 监督分析."""
    return {"show_dashboard": supervision.may_see_dashboard(g.get("actor"))}
