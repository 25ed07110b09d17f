"""The `xiaowei` command group and what every command shares: the --db and --json options, the one-line
error handling (never a traceback) and the engine facade of the current invocation."""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable

import click
from sqlalchemy.exc import ArgumentError, DBAPIError

from engine import settings
from engine.core import clock
from engine.core.errors import XiaoweiError
from engine.services.facade import Xiaowei, dumps  # noqa: F401  (dumps: re-exported for the command modules)
from storage import Database, default_url


class Context:
    def __init__(self) -> None:
        self.db_url: str | None = None
        self._app: Xiaowei | None = None

    @property
    def app(self) -> Xiaowei:
        if self._app is None:
            self._app = Xiaowei(Database(self.db_url or default_url()))
        return self._app


def db_option(func: Callable) -> Callable:
    """Every command takes --db (default: DATABASE_URL, else sqlite:///xiaowei.db)."""

    def store(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        if value:
            ctx.ensure_object(Context).db_url = value
        return value

    return click.option("--db", "db_url", metavar="URL", expose_value=False, callback=store, is_eager=True,
                        help="Database URL (default: DATABASE_URL, else sqlite:///xiaowei.db).")(func)


def json_option(func: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")(func)


def handle_errors(func: Callable) -> Callable:
    """Turn engine errors into one line on stderr and a non-zero exit; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except XiaoweiError as exc:
            click.echo(f"错误 / error: {exc.message}", err=True)
            for value in (getattr(exc, "errors", None) or {}).values():
                click.echo(f"  - {value}", err=True)
            for problem in getattr(exc, "problems", None) or []:
                click.echo(f"  {problem}", err=True)
            sys.exit(1)
        except DBAPIError as exc:
            text = str(exc.orig if exc.orig is not None else exc).strip().splitlines()[0]
            if "no such table" in text or "does not exist" in text:
                click.echo("错误 / error: 数据库尚未初始化,请先运行 xiaowei init / the database has no schema yet: "
                           "run xiaowei init", err=True)
            else:
                click.echo(f"错误 / error: 数据库出错 / database error: {text}", err=True)
            sys.exit(1)
        except (OSError, ArgumentError) as exc:
            click.echo(f"错误 / error: {exc}", err=True)
            sys.exit(1)

    return wrapper


def facade() -> Xiaowei:
    return click.get_current_context().ensure_object(Context).app


def parse_json(text: str | None, what: str = "--data") -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise XiaoweiError(f"{what} 不是有效的 JSON:{exc} / {what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise XiaoweiError(f"{what} 须为 JSON 对象 / {what} must be a JSON object")
    return value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@db_option
@click.pass_context
def main(ctx: click.Context) -> None:
    """Xiaowei 小微 — standardized village and community procedures as auditable BPMN cases."""
    ctx.ensure_object(Context)
    fixed = settings.reload().now  # each command reads the environment afresh
    if fixed:
        ctx.with_resource(clock.using(clock.FixedClock(fixed)))
