"""The web app: Flask application factory. Pages for cadres, supervisors and the public come in
their own blueprints; this module wires configuration, the database and the health check."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, jsonify
from sqlalchemy import text

from storage import Database


def create_app(config: dict[str, Any] | None = None, *, db: Database | None = None) -> Flask:
    """Build the app. ``db`` (or ``config['DATABASE_URL']``, else ``DATABASE_URL``) is the database."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ.get("XIAOWEI_SECRET_KEY") or os.urandom(32),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=20 * 1024 * 1024,
    )
    if config:
        app.config.update(config)
    database = db or Database(app.config.get("DATABASE_URL"))
    app.extensions["xiaowei_db"] = database

    @app.get("/healthz")
    def healthz():
        try:
            with database.read() as s:
                s.execute(text("SELECT 1"))
            return jsonify(status="ok", database="ok")
        except Exception as exc:  # the health check reports, never raises
            return jsonify(status="error", database=type(exc).__name__), 503

    return app
