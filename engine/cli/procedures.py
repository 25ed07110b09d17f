"""`xiaowei procedures list|show|publish-dir`, `xiaowei lint`, `xiaowei handbook`: the procedure library."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from engine.core import catalogue, procedures
from engine.core.errors import XiaoweiError
from engine.core.lint import lint_bytes

from .base import facade, db_option, dumps, handle_errors, json_option, main


@main.group("procedures")
def procedures_group() -> None:
    """The procedure library."""


@procedures_group.command("list")
@db_option
@json_option
@click.option("--edition", type=click.Choice(["village", "community"]), default=None)
@click.option("--category", default=None, metavar="CODE")
@handle_errors
def procedures_list(as_json: bool, edition: str | None, category: str | None) -> None:
    """List published procedures (filter by edition or category)."""
    if category and category not in catalogue.categories():
        raise XiaoweiError(f"未知类别“{category}”,可选:{'、'.join(catalogue.categories())} / unknown category")
    with facade().db.read() as s:
        data = procedures.list_procedures(s, edition=edition, category=category)
    if as_json:
        click.echo(dumps(data))
        return
    for p in data:
        click.echo(f"{p['id']:<10} v{p['version']:<3} {p['category_name']:<12} {p['name']}")


@procedures_group.command("show")
@db_option
@json_option
@click.argument("procedure_id")
@handle_errors
def procedures_show(as_json: bool, procedure_id: str) -> None:
    """Show a procedure: steps, roles, time limits, checkpoints, legal basis."""
    with facade().db.read() as s:
        data = procedures.show_procedure(s, procedure_id)
    if as_json:
        click.echo(dumps(data))
        return
    click.echo(f"{data['id']} {data['name']} (v{data['version']})")
    for step in data["steps"]:
        role = catalogue.roles().get(step["role"])
        limit = f" 时限 {step['time_limit']}" if step["time_limit"] else ""
        click.echo(f"  {step['id']:<28} {step['name']}  [{role.zh if role else step['role']}]{limit}")


@procedures_group.command("publish-dir")
@db_option
@json_option
@click.argument("directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@handle_errors
def procedures_publish_dir(as_json: bool, directory: Path | None) -> None:
    """Validate and publish every .bpmn file of a directory (default: processes/)."""
    with facade().db.write() as s:
        results = procedures.publish_directory(s, directory, actor="cli")
    click.echo(dumps(results) if as_json else f"{sum(r['new'] for r in results)} 个新版本 / new versions")



@main.command()
@json_option
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@db_option
def lint(as_json: bool, paths: tuple[Path, ...]) -> None:
    """Validate BPMN files (default: processes/)."""
    files: list[Path] = []
    for p in paths or (catalogue.processes_dir(),):
        files.extend(sorted(p.glob("*.bpmn")) if p.is_dir() else [p])
    report = []
    failed = 0
    for f in files:
        result = lint_bytes(f.read_bytes(), str(f))
        errors = result.errors
        failed += bool(errors)
        report.append({"file": str(f), "ok": not errors, "problems": [p.to_dict() for p in result.problems]})
        if not as_json:
            for p in result.problems:
                click.echo(f"{f.name}: {p}")
    if as_json:
        click.echo(dumps(report))
    else:
        click.echo(f"{len(files)} 个文件,{failed} 个有错误 / {len(files)} files, {failed} with errors")
    if failed or not files:
        sys.exit(1)


@main.command()
@db_option
@json_option
@click.option("--edition", required=True, type=click.Choice(["village", "community"]))
@click.option("--format", "fmt", required=True, type=click.Choice(["html", "pdf"]))
@click.option("-o", "output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--org", "org_code", default=None,
              help="print the local parameters in force at this township or village (its overrides marked)")
@handle_errors
def handbook(as_json: bool, edition: str, fmt: str, output: Path, org_code: str | None) -> None:
    """Print the handbook (一本两库) of an edition from the live published versions."""
    from engine.render.handbook import build_handbook

    result = build_handbook(facade(), edition, fmt, output, org_code)
    if as_json:
        click.echo(dumps({**result, "file": str(output)}))
    else:
        click.echo(f"已生成 {output}:{result['procedures']} 个事项,{result['bytes'] / 1024:.0f} KB,"
                   f"用时 {result['seconds']:.1f} 秒 / handbook written")
