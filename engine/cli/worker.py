"""`xiaowei worker`: the background work (the outbox: warning rules after each change) and the timers
(`tick`), for deployments where the web app runs without its own thread (gunicorn)."""

from __future__ import annotations

import click

from .base import db_option, dumps, facade, handle_errors, json_option, main


@main.command()
@db_option
@json_option
@click.option("--once", is_flag=True, help="drain what is due (outbox and timers) and exit")
@click.option("--poll", default=1.0, show_default=True, type=click.FloatRange(min=0.05), metavar="SECONDS",
              help="look at the outbox this often")
@click.option("--tick-every", default=60, show_default=True, type=click.IntRange(min=0), metavar="SECONDS",
              help="fire due timers and time-based checks this often (0: never)")
@handle_errors
def worker(as_json: bool, once: bool, poll: float, tick_every: int) -> None:
    """Run background work until stopped (Ctrl-C, SIGTERM)."""
    import signal
    import threading

    from engine.services import worker as background

    from engine.core import outbox

    app = facade()
    if once:
        done = background.run(app, once=True, tick_every=tick_every)
        left = app.read(outbox.backlog)  # what is still waiting: claimed by others, or failed and retried later
        if as_json:
            click.echo(dumps({**{k: v for k, v in done.items() if k != "tick"},
                              "backlog": {k: v for k, v in left.items() if k != "oldest"}}))
        else:
            click.echo(f"已处理变更 {done['rows']} 条(事项 {done['cases']} 件),新预警 {done['raised']},"
                       f"失败 {done['failed']} / processed {done['rows']} outbox rows, {done['raised']} warnings raised, "
                       f"{done['failed']} failed")
            if left["claimed"] or left["failing"]:
                click.echo(f"尚待处理:他处处理中 {left['claimed']} 条,失败待重试 {left['failing']} 条 / waiting: "
                           f"{left['claimed']} claimed elsewhere, {left['failing']} failed and to be retried")
        return
    stop = threading.Event()

    def _stop(_signum, _frame) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo(f"小微 worker: 每 {poll:g} 秒处理后台任务,每 {tick_every} 秒处理到期计时 / "
               f"draining the outbox every {poll:g} s, tick every {tick_every} s", err=True)
    background.run(app, stop=stop, poll=poll, tick_every=tick_every)
    click.echo("小微 worker 已停止 / stopped", err=True)
