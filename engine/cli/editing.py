"""Command-line forms for editing procedures (contract in docs/cli.md):

``xiaowei procedures import|export|diff|publish|drafts`` and ``xiaowei case migrate``.
Registered on the groups of :mod:`engine.cli.cases` and :mod:`engine.cli.procedures`.
"""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import click

from engine.core import audit, clock
from engine.core.errors import XiaoweiError
from engine.services import editing

from .base import db_option, dumps, facade, handle_errors, json_option
from .cases import case
from .procedures import procedures_group


@procedures_group.command("import")
@db_option
@json_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "username", default=None, metavar="USERNAME",
              help="Import as this user (checked: township staff of the owning township or district staff).")
@click.option("--process", "process_id", default=None, metavar="PROCESS_ID",
              help="Which process of a file with several pools to import (default: the one with content).")
@click.option("--id", "procedure_id", default=None, metavar="PROCEDURE_ID", help="Import under this procedure id.")
@click.option("--replace", is_flag=True, help="Replace an existing draft of the same id (default: a new id is used).")
@handle_errors
def procedures_import(as_json: bool, file: Path, username: str | None, process_id: str | None,
                      procedure_id: str | None, replace: bool) -> None:
    """Import a BPMN 2.0 file from any modeler as the draft of its procedure; report what cannot run.
    An existing draft is never replaced without --replace: the file then becomes a new draft."""
    size = file.stat().st_size
    data = file.read_bytes() if size <= editing.IMPORT_MAX_BYTES else b"\0" * (editing.IMPORT_MAX_BYTES + 1)
    with facade().db.write() as s:
        report = editing.import_bpmn(s, data, file.name, username=username, actor="cli", process_id=process_id,
                                     procedure_id=procedure_id, replace=replace)
    if as_json:
        click.echo(dumps(report.to_dict()))
    else:
        for line in report.lines():
            click.echo(line)
    if report.status != "imported":
        sys.exit(1)


@procedures_group.command("export")
@db_option
@click.argument("procedure_id")
@click.option("--version", "number", type=int, default=None, help="Version number (default: the latest).")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
def procedures_export(procedure_id: str, number: int | None, output: Path) -> None:
    """Write a version as standard BPMN 2.0 XML (Xiaowei data in the xw: namespace)."""
    with facade().db.read() as s:
        xml = editing.export_version(s, procedure_id, number)
        version = editing.get_version(s, procedure_id, number).version
    output.write_bytes(xml)
    click.echo(f"已导出 {procedure_id} 第{version}版 → {output} / exported")


@procedures_group.command("diff")
@db_option
@json_option
@click.argument("procedure_id")
@click.argument("v1", type=int)
@click.argument("v2", type=int)
@handle_errors
def procedures_diff(as_json: bool, procedure_id: str, v1: int, v2: int) -> None:
    """What changed between two versions, in plain Chinese."""
    with facade().db.read() as s:
        comparison = editing.diff_versions(s, procedure_id, v1, v2)
    if as_json:
        click.echo(dumps({"procedure_id": procedure_id, "v1": v1, "v2": v2, **comparison.to_dict()}))
        return
    click.echo(f"{procedure_id}:第{v1}版 → 第{v2}版")
    if comparison.same:
        click.echo("  流程内容没有变化 / no semantic change")
    for change in comparison.changes:
        click.echo(f"  · {change.zh}")


def _parse_effective(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        if len(text) == 10:  # a date: midnight China time
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day) - timedelta(hours=8)
        return audit.db_time(clock.to_utc(text))
    except ValueError:
        raise XiaoweiError(f"--effective 不是有效的日期:{text}(如 2026-04-01) / invalid date") from None


@procedures_group.command("publish")
@db_option
@json_option
@click.argument("procedure_id")
@click.option("--note", default="", help="Why this version (shown with the change summary).")
@click.option("--effective", default=None, metavar="DATE", help="New cases use it from this date (default: now).")
@click.option("--as", "username", default=None, metavar="USERNAME")
@handle_errors
def procedures_publish(as_json: bool, procedure_id: str, note: str, effective: str | None,
                       username: str | None) -> None:
    """Validate the draft and publish it as a new immutable version."""
    when = _parse_effective(effective)
    with facade().db.write() as s:
        result = editing.publish_draft(s, procedure_id, username=username, actor="cli", note=note,
                                       effective_from=when)
    if as_json:
        click.echo(dumps(result))
        return
    start = f",自 {result['effective_from']} 起用于新事项" if result["effective_from"] else ",新事项即日起使用"
    click.echo(f"已发布 {procedure_id} 第{result['version']}版{start} / published")
    for line in result["change_summary"].splitlines():
        click.echo(f"  · {line}")


@procedures_group.command("drafts")
@db_option
@json_option
@handle_errors
def procedures_drafts(as_json: bool) -> None:
    """List open drafts with revision and who saved last."""
    from sqlalchemy import select

    from storage.models import ProcedureDraft

    with facade().db.read() as s:
        rows = [{"procedure_id": d.procedure_id, "revision": d.revision, "source": d.source,
                 "updated_by": d.updated_by, "updated_at": audit.iso(d.updated_at)}
                for d in s.scalars(select(ProcedureDraft).order_by(ProcedureDraft.procedure_id))]
    if as_json:
        click.echo(dumps(rows))
        return
    for r in rows:
        click.echo(f"{r['procedure_id']:<12} 第{r['revision']}稿  {r['updated_by']}  {r['updated_at']}")


@case.command("migrate")
@db_option
@json_option
@click.argument("case_id", type=int)
@click.option("--to-version", "to_version", required=True, type=int)
@click.option("--as", "username", default=None, metavar="USERNAME")
@handle_errors
def case_migrate(as_json: bool, case_id: int, to_version: int, username: str | None) -> None:
    """Move a running case to another version when the steps it completed are unchanged there."""
    with facade().db.write() as s:
        result = editing.migrate_case(s, case_id, to_version, username=username, actor="cli")
    if as_json:
        click.echo(dumps(result))
        return
    click.echo(f"事项 #{case_id} 已由第{result['from_version']}版迁移到第{result['to_version']}版 / migrated")


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, choice = value.partition("=")
        if not sep or not key.strip() or not choice.strip():
            raise XiaoweiError(f"{what} 须写成 名称=取值(如 Lane_1=committee),而不是“{value}” / expected NAME=VALUE")
        out[key.strip()] = choice.strip()
    return out


@procedures_group.command("assist")
@db_option
@json_option
@click.argument("procedure_id")
@click.option("--as", "username", default=None, metavar="USERNAME")
@click.option("--apply", "apply", is_flag=True, help="Save the draft with what the assistant fixed.")
@click.option("--role", "roles", multiple=True, metavar="LANE=ROLE",
              help="Role of a lane (lane id or name; * for every lane without one), e.g. Lane_1=committee.")
@click.option("--kind", "kinds", multiple=True, metavar="TASK=KIND", help="Step kind of a task (id or name).")
@handle_errors
def procedures_assist(as_json: bool, procedure_id: str, username: str | None, apply: bool, roles: tuple[str, ...],
                      kinds: tuple[str, ...]) -> None:
    """What stands between an imported draft and publishing; with --apply, fix what can be fixed."""
    from engine.services.import_assistant import assist

    with facade().db.write() as s:
        result = assist(s, procedure_id, username=username, actor="cli", apply=apply,
                        roles=_pairs(roles, "--role"), kinds=_pairs(kinds, "--kind"))
    if as_json:
        click.echo(dumps(result))
        return
    verb = "已修正" if result["saved"] else "可修正"
    click.echo(f"{procedure_id} 草稿第{result['revision']}稿:{verb} {len(result['fixed'])} 处"
               + (",已保存 / saved" if result["saved"] else ("(加 --apply 保存) / add --apply to save" if result["fixed"] else "")))
    for item in result["fixed"]:
        click.echo(f"  ✓ {item['zh']}")
    for item in result["todo"]:
        click.echo(f"  {'✗' if item.get('severity') == 'error' else '·'} {item['zh']}")
    click.echo("  可以发布 / ready to publish" if result["publishable"] and (result["saved"] or not result["fixed"])
               else ("  修正后可以发布 / publishable once applied" if result["publishable"] else
                     "  还不能发布 / not yet publishable"))
    click.echo("  可以还原为任务单 / a step table can be rebuilt" if not result["step_table"] else
               f"  无法还原为任务单:{result['step_table']}")
