"""`xiaowei serve`: the web app with the background ticker. The one module of the engine that imports
:mod:`webui` (the engine never depends on the web layer otherwise)."""

from __future__ import annotations

import click

from .base import facade, db_option, handle_errors, main


def start_ticker(engine_app, every: float):
    """A daemon thread that runs ``tick`` every ``every`` seconds (safe beside other tickers: a timer
    fires once, each case is locked while it changes). Errors are logged, never fatal."""
    import logging
    import threading

    log = logging.getLogger("xiaowei.tick")
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                engine_app.tick()
            except Exception:  # the server keeps serving; the next round tries again
                log.exception("tick failed")
            stop.wait(every)

    thread = threading.Thread(target=run, name="xiaowei-tick", daemon=True)
    thread.start()
    return stop


@main.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--tick-every", default=60, show_default=True, type=int, metavar="SECONDS",
              help="fire due timers and time-based checks this often in the background (0: never; then run "
                   "`xiaowei tick` from cron)")
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
    if tick_every > 0:
        start_ticker(engine_app, tick_every)
    click.echo(f"小微 Xiaowei: http://{host}:{port}/")
    try:
        from waitress import serve as waitress_serve
    except ImportError:  # pragma: no cover - waitress is a dependency
        app.run(host=host, port=port)
        return
    waitress_serve(app, host=host, port=port, threads=8)
