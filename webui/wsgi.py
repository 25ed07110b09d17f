"""The WSGI entry point for production servers: ``gunicorn -c deploy/gunicorn.conf.py webui.wsgi:app``.

Each worker process builds the app on ``DATABASE_URL`` with ``XIAOWEI_SECRET_KEY`` (required on
PostgreSQL; docs/deploy.md) and warms its procedure cache. The web workers do no background work: run
``xiaowei worker`` beside them (the warning rules after each change, timers, housekeeping).
"""

from __future__ import annotations

from webui import create_app, warm_up

app = create_app()
warm_up(app)
