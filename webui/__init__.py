"""The web app: Flask application factory. Pages for cadres and supervisors (blueprints ``auth``,
``tasks``, ``cases``) and a small JSON API (``api``); every change goes through
:class:`engine.service.Xiaowei`."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from flask import Flask, g, jsonify, render_template, request
from sqlalchemy import text

from engine.errors import XiaoweiError
from engine.service import Xiaowei
from storage import Database

from . import filters, security


def create_app(config: dict[str, Any] | None = None, *, db: Database | None = None) -> Flask:
    """Build the app. ``db`` (or ``config['DATABASE_URL']``, else ``DATABASE_URL``) is the database.

    The session cookie is Secure unless the app is TESTING or ``XIAOWEI_COOKIE_SECURE=0`` (plain
    HTTP on a workstation); set ``SESSION_COOKIE_SECURE`` in ``config`` to decide explicitly.
    """
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ.get("XIAOWEI_SECRET_KEY") or os.urandom(32),
        SESSION_COOKIE_NAME="xw_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        MAX_CONTENT_LENGTH=20 * 1024 * 1024,
    )
    if config:
        app.config.update(config)
    if "SESSION_COOKIE_SECURE" not in (config or {}):
        app.config["SESSION_COOKIE_SECURE"] = (not app.config.get("TESTING")
                                               and os.environ.get("XIAOWEI_COOKIE_SECURE", "1") != "0")
    database = db or Database(app.config.get("DATABASE_URL"))
    app.extensions["xiaowei_db"] = database
    app.extensions["xiaowei"] = Xiaowei(database)

    filters.register(app)

    from .api import bp as api_bp
    from .auth import bp as auth_bp
    from .cases import bp as cases_bp
    from .overview import bp as overview_bp
    from .tasks import bp as tasks_bp

    for bp in (auth_bp, tasks_bp, cases_bp, overview_bp, api_bp):
        app.register_blueprint(bp)

    @app.before_request
    def _before() -> None:
        if request.endpoint in ("healthz", "static"):
            return
        security.check_csrf()
        security.load_user()

    @app.after_request
    def _headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        if request.endpoint not in ("static", "healthz"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"csrf_token": security.csrf_token, "current_user": g.get("user")}

    def _error(status: int, error: XiaoweiError | None = None):
        if request.path.startswith("/api/"):
            if error is not None:
                return jsonify(error.to_dict()), error.status
            codes = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                     405: "method_not_allowed", 413: "too_large"}
            body = {"error": codes.get(status, "error")}
            if g.get("csrf_failed"):
                body["error"] = "csrf"
            return jsonify(body), status
        return render_template("errors/error.html", status=status, error=error,
                               csrf_failed=g.get("csrf_failed", False)), status

    for status in (400, 401, 403, 404, 405, 413):
        app.register_error_handler(status, lambda exc, status=status: _error(status))

    @app.errorhandler(XiaoweiError)
    def _xiaowei_error(exc: XiaoweiError):
        return _error(exc.status, exc)

    @app.get("/healthz")
    def healthz():
        try:
            with database.read() as s:
                s.execute(text("SELECT 1"))
            return jsonify(status="ok", database="ok")
        except Exception as exc:  # the health check reports, never raises
            return jsonify(status="error", database=type(exc).__name__), 503

    @app.get("/")
    def home():
        from flask import redirect, url_for

        return redirect(url_for("tasks.index"))

    return app
