"""`xiaowei serve`: the web app with the background worker (outbox and timers). The one module of the engine that imports
:mod:`webui` (the engine never depends on the web layer otherwise)."""

from __future__ import annotations

import click

from .base import facade, db_option, handle_errors, main


def start_ticker(engine_app, every: float, *, poll: float = 1.0):
    """A daemon thread that runs the background worker: the outbox drained every ``poll`` seconds and
    ``tick`` every ``every`` seconds (0: never; safe beside other workers: a claim or a timer is taken
    once, each case is locked while it changes). Errors are logged, never fatal. The event it returns
    stops it."""
    from engine.services import worker

    return worker.start_thread(engine_app, poll=poll, tick_every=every)


@main.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--tick-every", default=60, show_default=True, type=int, metavar="SECONDS",
              help="fire due timers and time-based checks this often in the background (0: never; then run "
                   "`xiaowei worker` or `xiaowei tick` elsewhere); the warning rules after each change run every second")
@handle_errors
def serve(host: str, port: int, tick_every: int) -> None:
    """Serve the web app."""
    from webui import create_app

    from webui import warm_up

    from engine.core.workdays import check_calendar

    engine_app = facade()
    app = create_app(db=engine_app.db)
    warm_up(app)
    for warning in check_calendar():  # a missing holiday calendar is said at start-up, not found out later
        click.echo(f"警告 / warning: {warning}", err=True)
    start_ticker(engine_app, tick_every)  # the outbox always; timers unless --tick-every 0
    click.echo(f"小微 Xiaowei: http://{host}:{port}/")
    try:
        from waitress import serve as waitress_serve
    except ImportError:  # pragma: no cover - waitress is a dependency
        app.run(host=host, port=port)
        return
    waitress_serve(app, host=host, port=port, threads=8)
