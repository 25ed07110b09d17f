"""Command-line forms for supervision (contract in docs/cli.md): ``xiaowei grades`` and
``xiaowei supervision monthly|note``. Registered on :func:`engine.cli.base.main`."""

from __future__ import annotations

import click

from engine.services.supervision import analysis as supervision

from .base import db_option, dumps, facade, handle_errors, json_option, main


@main.command("grades")
@db_option
@json_option
@click.option("--month", default=None, metavar="YYYY-MM", help="The month graded (default: this month).")
@click.option("--org", "org_code", default=None, metavar="ORGCODE", help="Only the villages of this subtree.")
@click.option("--notify/--no-notify", default=True, show_default=True,
              help="Start a notice case (B-SUP-02) for every C or D grade, once per village and month.")
@handle_errors
def grades(as_json: bool, month: str | None, org_code: str | None, notify: bool) -> None:
    """Village grades (A–D) from the local weights; C gets a 预警通知书, D an 整改通知书."""
    data = facade().grade_villages(month, notify=notify, org_code=org_code)
    if as_json:
        click.echo(dumps(data))
        return
    for g in data["grades"]:
        w = g["open_warnings"]
        click.echo(f"{g['org']:<10} {g['org_name']:<8} {g['grade']} {g['score']:>5}  红{w['red']} 黄{w['yellow']} "
                   f"蓝{w['blue']}  超时率{g['overdue_rate']:.0%}  公开逾期{g['disclosure_overdue']}")
    for n in data["notices"]:
        click.echo(f"已下发{n['notice']}:{n['org']} 事项 {n['case_id']}")
    click.echo(f"{data['month']} 评级 {len(data['grades'])} 个村(社区),新下发通知书 {len(data['notices'])} 份 / "
               f"{len(data['grades'])} graded, {len(data['notices'])} notices")


@main.group("supervision")
def supervision_group() -> None:
    """Periodic supervision: the liaison station's monthly checklist; supervisors' notes on cadres."""


@supervision_group.command("monthly")
@db_option
@json_option
@click.option("--month", default=None, metavar="YYYY-MM", help="Default: this month (China time).")
@click.option("--org", "org_codes", multiple=True, metavar="ORGCODE", help="Only these villages (repeatable).")
@handle_errors
def monthly(as_json: bool, month: str | None, org_codes: tuple[str, ...]) -> None:
    """Start the monthly checklist (B-SUP-01) for every village and community that has none this month."""
    started = facade().supervision_monthly(month, list(org_codes) or None)
    if as_json:
        click.echo(dumps({"started": len(started), "cases": started}))
        return
    for item in started:
        click.echo(f"{item['org']:<10} {item['org_name']:<8} 事项 {item['case_id']}")
    click.echo(f"新发起月度监督检查 {len(started)} 件 / {len(started)} checklists started")


@supervision_group.command("note")
@db_option
@json_option
@click.argument("cadre", metavar="USERNAME")
@click.option("--kind", type=click.Choice(list(supervision.NOTE_KINDS)), required=True)
@click.option("--text", default="")
@click.option("--responsibilities", default="", help="三交底: 责任清单")
@click.option("--problems", default="", help="三交底: 问题清单")
@click.option("--risks", default="", help="三交底: 风险清单")
@click.option("--as", "--user", "username", required=True, metavar="USERNAME")
@handle_errors
def note(as_json: bool, cadre: str, kind: str, text: str, responsibilities: str, problems: str, risks: str,
         username: str) -> None:
    """Record a talk, notice, the three lists (三交底) or another note in a cadre's file."""
    row = facade().record_note(username, cadre, kind, text, responsibilities=responsibilities, problems=problems,
                             risks=risks)
    click.echo(dumps(row) if as_json else f"已记录 #{row['id']}: {cadre} {row['kind_zh']}")
