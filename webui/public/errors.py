"""Error pages of the public side: in the public layout, in words a villager understands, with the way
back to the board the page belonged to (never to a cadre's task list)."""

from __future__ import annotations

from flask import render_template, request

from engine.core.errors import XiaoweiError
from engine.services import public_nav
from webui.security import xw


def public_error(status: int, error: XiaoweiError | None = None):
    try:
        home = xw().read(public_nav.home, dict(request.view_args or {}))
    except Exception:  # noqa: BLE001 - an error page must render even when the database does not answer
        home = None
    return render_template("public/error.html", status=status, error=error, home=home), status
