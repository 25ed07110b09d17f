"""`xiaowei case start|tasks|complete|show|list|cancel`, `xiaowei tick`, `xiaowei audit verify|export`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from engine.core import catalogue, clock
from engine.core.errors import XiaoweiError

from .base import facade, db_option, dumps, handle_errors, json_option, main, parse_json


@main.group()
def case() -> None:
    """Cases: start, see tasks, complete steps."""


@case.command("start")
@db_option
@json_option
@click.argument("procedure_id")
@click.option("--org", "org_code", required=True, metavar="ORGCODE")
@click.option("--as", "username", required=True, metavar="USERNAME")
@click.option("--data", default=None, metavar="JSON")
@handle_errors
def case_start(as_json: bool, procedure_id: str, org_code: str, username: str, data: str | None) -> None:
    """Start a case; prints the case id."""
    case_id = facade().start_case(procedure_id, org_code, username, parse_json(data))
    if as_json:
        click.echo(dumps({"case_id": case_id, "tasks": facade().tasks(case_id, fire=False)}))
    else:
        click.echo(case_id)


@case.command("tasks")
@db_option
@json_option
@click.argument("case_id", type=int)
@handle_errors
def case_tasks(as_json: bool, case_id: int) -> None:
    """Ready steps of a case with role and due time."""
    tasks = facade().tasks(case_id)
    if as_json:
        click.echo(dumps(tasks))
        return
    if not tasks:
        click.echo("没有待办步骤 / no ready steps")
    for t in tasks:
        role = catalogue.roles().get(t["role"])
        due = f" 期限 {t['due_at']}" if t["due_at"] else ""
        flag = " [已超期 overdue]" if t["overdue"] else ""
        click.echo(f"{t['step_id']:<28} {t['name']}  [{role.zh if role else t['role']}]{due}{flag}")


@case.command("complete")
@db_option
@json_option
@click.argument("case_id", type=int)
@click.argument("step_id")
@click.option("--as", "username", required=True, metavar="USERNAME")
@click.option("--data", default=None, metavar="JSON")
@click.option("--on-behalf-of", default=None, help="代办: the villager's name.")
@click.option("--reason", default=None, help="代办: why the cadre acts on their behalf.")
@handle_errors
def case_complete(as_json: bool, case_id: int, step_id: str, username: str, data: str | None,
                  on_behalf_of: str | None, reason: str | None) -> None:
    """Complete a ready step with form data."""
    result = facade().complete(case_id, step_id, username, parse_json(data), on_behalf_of=on_behalf_of,
                             proxy_reason=reason)
    if as_json:
        click.echo(dumps(result))
        return
    click.echo(f"已办理 {step_id};事项状态 {result['status']} / completed")
    for t in result["tasks"]:
        click.echo(f"  下一步 next: {t['step_id']} {t['name']}")


@case.command("show")
@db_option
@json_option
@click.argument("case_id", type=int)
@handle_errors
def case_show(as_json: bool, case_id: int) -> None:
    """Status, current steps and history of a case."""
    data = facade().show_case(case_id)
    if as_json:
        click.echo(dumps(data))
        return
    click.echo(f"#{data['id']} {data['procedure_id']} {data['procedure_name']} — {data['title']}")
    click.echo(f"  {data['org_name']}  状态 {data['status_zh']} ({data['status']})  查询码 {data['tracking_code']}")
    for t in data["current_steps"]:
        click.echo(f"  当前步骤 {t['step_id']} {t['name']} 期限 {t['due_at'] or '-'}")
    for ev in data["history"]:
        what = ev["data"].get("name") or ev["data"].get("label") or ""
        click.echo(f"  {ev['seq']:>3} {ev['at']} {ev['type']:<16} {ev['actor'] or '-':<16} {what}")


@case.command("list")
@db_option
@json_option
@click.option("--org", "org_code", default=None, metavar="ORGCODE")
@click.option("--status", default=None)
@handle_errors
def case_list(as_json: bool, org_code: str | None, status: str | None) -> None:
    """List cases (optionally of an organization and its subtree, or by status)."""
    data = facade().list_cases(org_code=org_code, status=status)
    if as_json:
        click.echo(dumps(data))
        return
    for c in data:
        click.echo(f"#{c['id']:<6} {c['procedure_id']:<10} {c['org']:<12} {c['status_zh']:<6} {c['title']}")


@case.command("cancel")
@db_option
@click.argument("case_id", type=int)
@click.option("--as", "username", required=True, metavar="USERNAME")
@click.option("--reason", required=True)
@handle_errors
def case_cancel(case_id: int, username: str, reason: str) -> None:
    """Cancel (terminate) a running case with a reason."""
    facade().cancel(case_id, username, reason)
    click.echo(f"事项 #{case_id} 已撤销 / cancelled")


@main.command()
@db_option
@json_option
@click.option("--now", "now", default=None, metavar="ISO8601", help="Fire timers due at this time.")
@handle_errors
def tick(as_json: bool, now: str | None) -> None:
    """Fire every due timer."""
    if now:
        try:
            fixed = clock.FixedClock(now)
        except ValueError:
            raise XiaoweiError(f"--now 不是有效的 ISO 8601 时间:{now} / invalid time") from None
        with clock.using(fixed):
            result = facade().tick()
    else:
        result = facade().tick()
    if as_json:
        click.echo(dumps(result))
    else:
        click.echo(f"到期事项 {result['due_cases']},推进 {result['cases_advanced']} / due {result['due_cases']}, "
                   f"advanced {result['cases_advanced']}")
        for warning in result.get("calendar_warnings", []):
            click.echo(f"警告 / warning: {warning}", err=True)


@main.group("audit")
def audit_group() -> None:
    """Verify and export the audit trail."""


@audit_group.command("verify")
@db_option
@json_option
@click.option("--case", "case_id", type=int, default=None)
@handle_errors
def audit_verify(as_json: bool, case_id: int | None) -> None:
    """Recompute every hash chain; exit 1 if any event was edited, deleted, reordered or inserted."""
    reports = facade().verify(case_id)
    bad = [r for r in reports if not r.ok]
    if as_json:
        click.echo(dumps([{"chain": r.chain, "events": r.events, "ok": r.ok, "problems": r.problems} for r in reports]))
    else:
        total = sum(r.events for r in reports)
        if bad:
            click.echo(f"审计链校验失败 / audit verification FAILED ({len(bad)} of {len(reports)} chains)")
            for r in bad:
                for p in r.problems:
                    click.echo(f"  {r.chain}: {p}")
        else:
            click.echo(f"审计链完好 / audit chains verify: {len(reports)} chains, {total} events")
    if bad:
        sys.exit(1)


@audit_group.command("export")
@db_option
@click.argument("case_id", type=int)
@click.option("-o", "output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
def audit_export(case_id: int, output: Path) -> None:
    """Write a self-contained trail that `python -m engine.trailcheck FILE` verifies offline."""
    text = facade().export_trail(case_id)
    output.write_text(text, encoding="utf-8")
    click.echo(f"已导出 {output} / trail written")
