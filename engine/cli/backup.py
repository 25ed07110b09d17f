"""`xiaowei backup -o FILE` and `xiaowei restore FILE`: the whole database (SQLite's online backup,
or pg_dump/pg_restore on PostgreSQL); a restored database is verified at once."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .base import db_option, dumps, facade, handle_errors, json_option, main


@main.command()
@db_option
@json_option
@click.option("-o", "output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="the backup file to write")
@click.option("--force", is_flag=True, help="overwrite the file if it exists")
@handle_errors
def backup(as_json: bool, output: Path, force: bool) -> None:
    """Back up the whole database (online: the server may keep running)."""
    from engine.services import backup as backups

    done = backups.backup(facade().db, output, overwrite=force)
    if as_json:
        click.echo(dumps(done))
    else:
        click.echo(f"已备份到 {done['file']}({done['bytes']} 字节,{done['format']})/ backed up")


@main.command()
@db_option
@json_option
@click.argument("backup_file", type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
def restore(as_json: bool, backup_file: Path) -> None:
    """Replace the database by a backup (stop the servers and workers first), then verify every chain."""
    from engine.services import backup as backups

    done = backups.restore(facade().db, backup_file)
    if as_json:
        click.echo(dumps(done))
    elif done["problems"]:
        click.echo(f"已恢复,但审计链校验失败 / restored, audit verification FAILED ({len(done['problems'])} problems)")
        for problem in done["problems"]:
            click.echo(f"  {problem}")
    else:
        click.echo(f"已恢复并校验:{done['chains']} 条审计链,{done['events']} 个事件完好 / restored; "
                   f"audit chains verify: {done['chains']} chains, {done['events']} events")
    if done["problems"]:
        sys.exit(1)
