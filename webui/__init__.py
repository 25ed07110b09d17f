"""The web app: Flask application factory. Pages for cadres and supervisors (blueprints ``auth``,
``tasks``, ``cases``) and a small JSON API (``api``); every change goes through
:class:`engine.services.facade.Xiaowei`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask, g, jsonify, render_template, request
from sqlalchemy import text

from engine import settings
from engine.core.errors import XiaoweiError
from engine.services import words
from engine.services.facade import Xiaowei
from storage import Database

from . import filters, i18n, security, vote_rules


def create_app(config: dict[str, Any] | None = None, *, db: Database | None = None) -> Flask:
    """Build the app. ``db`` (or ``config['DATABASE_URL']``, else ``DATABASE_URL``) is the database.

    The session cookie is Secure unless the app is TESTING or ``XIAOWEI_COOKIE_SECURE=0`` (plain
    HTTP on a workstation); set ``SESSION_COOKIE_SECURE`` in ``config`` to decide explicitly.
    """
    cfg = settings.current()
    app = Flask(__name__)
    app.config.update(
        SESSION_COOKIE_NAME="xw_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        MAX_CONTENT_LENGTH=20 * 1024 * 1024,
    )
    if config:
        app.config.update(config)
    database = db or Database(app.config.get("DATABASE_URL"))
    if not app.config.get("SECRET_KEY"):  # the same on every process: sessions and CSRF tokens work across them
        from engine.core import instance

        app.config["SECRET_KEY"] = instance.secret_key(database.url, testing=bool(app.config.get("TESTING")))
    if "SESSION_COOKIE_SECURE" not in (config or {}):
        app.config["SESSION_COOKIE_SECURE"] = (not app.config.get("TESTING")
                                               and cfg.cookie_secure)
    # Behind a reverse proxy (nginx, a cloud load balancer) every request comes from the proxy's
    # address: rate limits and failed-login records would lump all villagers together. Set
    # XIAOWEI_TRUSTED_PROXIES to the number of proxies in front to take the client address from
    # X-Forwarded-For (never trusted without it: a client could forge the header).
    proxies = int(app.config.get("TRUSTED_PROXIES", cfg.trusted_proxies) or 0)
    if proxies > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]
    app.extensions["xiaowei_db"] = database
    # A request does only what is atomic; the warning rules run in the worker (`xiaowei worker`, or the
    # thread of `xiaowei serve`). A TESTING app (or BACKGROUND_INLINE) does that work right after each change.
    inline = bool(app.config.get("BACKGROUND_INLINE", app.config.get("TESTING", False)))
    app.extensions["xiaowei"] = Xiaowei(database, inline_background=inline)

    filters.register(app)
    vote_rules.register(app)
    i18n.init_app(app)
    words.install(i18n.gettext, filters.english_page)  # the public board's words in the page's language

    from webui.api.routes import bp as api_bp
    from webui.views.auth import bp as auth_bp
    from webui.views.cases import bp as cases_bp
    from webui.views.overview import bp as overview_bp
    from webui.views.tasks import bp as tasks_bp
    from webui.views.admin import bp as admin_bp
    from webui.views.trail_print import bp as trail_print_bp
    from webui.views.warnings import bp as warnings_bp

    for bp in (auth_bp, tasks_bp, cases_bp, overview_bp, api_bp, admin_bp, trail_print_bp, warnings_bp):
        app.register_blueprint(bp)
    from webui.views.procedures import bp as procedures_bp  # 流程管理: drafts, diff, publish, migrate, import

    app.register_blueprint(procedures_bp)
    from webui.views.modeler import bp as modeler_bp  # 流程图编辑器 (bpmn-js; its page alone allows script-src 'self')
    from webui.views.procedure_editor import bp as procedure_editor_bp  # 任务单: step-table editor, server-side forms

    app.register_blueprint(procedure_editor_bp)
    app.register_blueprint(modeler_bp)
    from webui.views.variants import bp as variants_bp  # 镇(街道)变体 of district procedures

    app.register_blueprint(variants_bp)
    from webui.views.import_assistant import bp as import_assistant_bp  # 导入助手 (issue #15)

    app.register_blueprint(import_assistant_bp)
    from webui.public.views import bp as public_bp  # no login: the public side (公开栏, 流程到哪了, 码上举报)

    app.register_blueprint(public_bp)
    from webui.views.cadres import bp as cadres_bp  # 廉情档案
    from webui.views.dashboard import bp as dashboard_bp  # 监督分析: charts, CSV, heat map

    app.register_blueprint(dashboard_bp)
    app.register_blueprint(cadres_bp)
    from webui.views.exports import bp as exports_bp  # Excel and CSV of the case search and the warnings

    app.register_blueprint(exports_bp)

    @app.before_request
    def _before() -> None:
        if request.endpoint in ("healthz", "static", "i18n.switch"):
            return
        security.load_user()  # first: a refused request is recorded with the user who sent it
        security.check_csrf()

    @app.after_request
    def _headers(response):
        if response.status_code in (403, 429) or (response.status_code == 400 and g.get("csrf_failed")):
            _record_refused(response.status_code)
        if request.is_secure:  # over TLS (directly, or X-Forwarded-Proto from a trusted proxy)
            from engine.core import security_settings

            seconds = security_settings.hsts_seconds()
            if seconds:
                response.headers.setdefault("Strict-Transport-Security", f"max-age={seconds}; includeSubDomains")
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

    def _record_refused(status: int) -> None:
        """Every refused request, on any route, goes to the system chain (in aggregate per client and
        hour: see engine.limits.refused). Recording never changes the answer."""
        from engine.core import limits

        user = g.get("user")
        reason = "csrf" if g.get("csrf_failed") else ""
        try:
            with database.write() as s:
                limits.refused(s, who=user.username if user is not None else "", address=security.client_address(),
                               status=status, method=request.method, path=request.path,
                               endpoint=request.endpoint, reason=reason)
        except Exception:  # noqa: BLE001 - a failed record must not turn a 403 into a 500
            app.logger.exception("could not record a refused request")

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"csrf_token": security.csrf_token, "current_user": g.get("user")}

    def _error(status: int, error: XiaoweiError | None = None):
        if request.path.startswith("/api/"):
            if error is not None:
                return jsonify(error.to_dict()), error.status
            codes = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                     405: "method_not_allowed", 413: "too_large", 429: "too_many_requests", 500: "internal_error",
                     503: "busy"}
            body = {"error": codes.get(status, "error")}
            if g.get("csrf_failed"):
                body["error"] = "csrf"
            return jsonify(body), status
        if request.path == "/public" or request.path.startswith("/public/"):  # villagers: back to the board
            from webui.public.errors import public_error

            return public_error(status, error)
        return render_template("errors/error.html", status=status, error=error,
                               csrf_failed=g.get("csrf_failed", False)), status

    for status in (400, 401, 403, 404, 405, 413, 429, 503):
        app.register_error_handler(status, lambda exc, status=status: _error(status))

    @app.errorhandler(500)
    def _server_error(exc):
        """The last line: an error nobody foresaw answers a Chinese page (or JSON), never a traceback;
        the transaction was rolled back, so nothing was half saved."""
        original = getattr(exc, "original_exception", None)
        if original is not None:
            app.logger.error("unhandled error on %s %s", request.method, request.path, exc_info=original)
        return _error(500)

    @app.errorhandler(XiaoweiError)
    def _xiaowei_error(exc: XiaoweiError):
        return _error(exc.status, exc)

    @app.get("/favicon.ico")
    def favicon():
        return app.send_static_file("favicon.svg"), 200, {"Content-Type": "image/svg+xml",
                                                            "Cache-Control": "public, max-age=86400"}

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
        from flask import redirect

        from webui.security import landing_url

        return redirect(landing_url())

    return app


def warm_up(app: Flask) -> int:
    """Load every current procedure version's parsed definition and SpiffWorkflow spec into the
    runtime cache, then move everything alive into the garbage collector's permanent generation
    (``gc.freeze``): a full collection would otherwise walk these large, long-lived object graphs
    and pause a request for tens of milliseconds. Returns the number of versions loaded."""
    import gc

    from sqlalchemy import select

    from engine.core import procedures
    from storage.models import Procedure

    database = app.extensions["xiaowei_db"]
    database.analyze()  # planner statistics for the data as it is now (SQLite)
    with database.read() as s:
        ids = [v for v in s.scalars(select(Procedure.current_version_id)) if v is not None]
        for version_id in ids:
            procedures.runtime(s, version_id)
    gc.collect()
    gc.freeze()
    return len(ids)
