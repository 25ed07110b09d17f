"""The public side (no login, phone first, no JavaScript): the village or community board
(公开栏), 我们的钱包, 补贴去哪了, the procedures as flowcharts, a case's progress page reached by its
tracking code or QR code (流程到哪了), objections during a notice period (异议) and 码上举报.

Pages that show no form may be cached for a minute (``Cache-Control: public, max-age=60``); forms
carry the anonymous session's CSRF token and are never cached. Objections and reports are limited
per sender address (a keyed hash, nothing else kept), need a few seconds of filling in, and have a
honeypot field; a refused submission is shown again with its text, never lost.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import time
from datetime import timedelta
from functools import lru_cache

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, url_for
from itsdangerous import BadSignature, URLSafeSerializer
from markupsafe import Markup
from sqlalchemy import delete, func, select

from engine import attachments, audit, cases, objections
from engine import public as rules
from engine.errors import Conflict, InvalidData
from storage.models import Procedure, PublicSubmission

from . import public_reads as pr
from .i18n import gettext as _
from .security import xw

bp = Blueprint("public", __name__, url_prefix="/public")

CACHE = "public, max-age=60"
HONEYPOT = "website"
MIN_FILL_SECONDS = 3  # a person needs longer than this to write an objection or a report
RATE_LIMITS = {"objection": 10, "report": 5}  # per sender address per hour
RATE_WINDOW = timedelta(hours=1)


def _cached(body, status: int = 200):
    response = current_app.make_response((body, status))
    response.headers["Cache-Control"] = CACHE
    response.vary.update(("Cookie", "Accept-Language"))  # the page's language (webui.i18n)
    return response


def _board_org(org_code: str):
    with xw().db.read() as s:
        org = pr.board_org(s, org_code)
    if org is None:
        abort(404)
    return org


# --- the board ---------------------------------------------------------------------------------------

@bp.get("/<org_code>")
def board(org_code: str):
    with xw().db.read() as s:
        org = pr.board_org(s, org_code)
        if org is None:
            abort(404)
        page = {"org": org, "notices": pr.on_notice(s, org), "past": pr.past_notices(s, org),
                "groups": pr.edition_procedures(s, org), "cadres": pr.cadres(s, org), "changes": pr.changes(s, org)}
    return _cached(render_template("public/board.html", **page))


@bp.get("/<org_code>/money")
def money(org_code: str):
    with xw().db.read() as s:
        org = pr.board_org(s, org_code)
        if org is None:
            abort(404)
        data = pr.money(s, org, page=_page())
    return _cached(render_template("public/money.html", org=org, data=data, subsidies=False))


@bp.get("/<org_code>/subsidies")
def subsidies(org_code: str):
    with xw().db.read() as s:
        org = pr.board_org(s, org_code)
        if org is None:
            abort(404)
        data = pr.subsidies(s, org, page=_page())
    return _cached(render_template("public/money.html", org=org, data=data, subsidies=True))


def _page() -> int:
    """``?page=N``; anything else is page 1 (a public page never errors on a bad page number)."""
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and len(raw) < 7 else 1


@bp.get("/<org_code>/procedures/<procedure_id>")
def procedure(org_code: str, procedure_id: str):
    with xw().db.read() as s:
        org = pr.board_org(s, org_code)
        proc = s.get(Procedure, procedure_id)
        edition = "village" if org is not None and org.kind == "village" else "community"
        if org is None or proc is None or proc.current_version_id is None or proc.edition not in (edition, "both"):
            abort(404)
        d = pr.definition(s, proc.current_version_id)
        svg = pr.diagram(proc.current_version_id, d, (), ())
    return _cached(render_template("public/procedure.html", org=org, d=d, svg=svg))


@bp.get("/track")
def track():
    code = cases.normalize_tracking_code(request.args.get("code") or "")
    if not code:
        return redirect(url_for(".board", org_code=request.args.get("org") or "")) if request.args.get("org") \
            else abort(404)
    with xw().db.read() as s:
        receipt = pr.case_by_code(s, code) is None and objections.by_receipt(s, code) is not None
    if receipt:  # one lookup box: a case's tracking code or an objection's receipt code
        return redirect(url_for(".objection_track", receipt=cases.format_tracking_code(code)))
    return redirect(url_for(".case", code=cases.format_tracking_code(code)))


# --- a case --------------------------------------------------------------------------------------------

def _case_page(code: str) -> dict:
    with xw().db.read() as s:
        case = pr.case_by_code(s, code)
        if case is None:
            abort(404)
        case_id = case.id
    xw().fire_due(case_id)  # a notice period that ended shows as ended
    with xw().db.read() as s:
        case = pr.case_by_code(s, code)
        return pr.case_page(s, case)


def case_url(code: str) -> str:
    return url_for("public.case", code=cases.format_tracking_code(cases.normalize_tracking_code(code)),
                   _external=True)


def qr_svg(url: str, scale: int = 3) -> str:
    """An inline SVG QR code of ``url`` (segno, error correction M), titled in the page's language."""
    return _qr_svg(url, scale, _("扫码查看办理进度"))


@lru_cache(maxsize=2048)
def _qr_svg(url: str, scale: int, title: str) -> str:
    import segno

    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=scale, border=2, xmldecl=False, svgns=True,
                                     title=title, nl=False)
    return out.getvalue().decode("utf-8")


@bp.app_template_global("public_case_qr")
def public_case_qr(code: str) -> Markup:
    """The QR code of a case's public progress page (staff step page header)."""
    return Markup(qr_svg(case_url(code), 2))


@bp.get("/case/<code>")
def case(code: str):
    page = _case_page(code)
    return _cached(render_template("public/case.html", c=page, qr=qr_svg(case_url(page["raw_code"]))))


@bp.get("/case/<code>/data.json")
def case_data(code: str):
    page = _case_page(code)
    response = jsonify(pr.case_json(page))
    response.headers["Cache-Control"] = CACHE
    return response


@bp.get("/case/<code>/receipt")
def receipt(code: str):
    page = _case_page(code)
    url = case_url(page["raw_code"])
    return _cached(render_template("public/receipt.html", c=page, url=url, qr=qr_svg(url, 5)))


# --- forms: objections and reports ------------------------------------------------------------------

def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="xw-public-form")


def form_stamp() -> str:
    return _signer().dumps(int(time.time()))


def _check_stamp() -> str | None:
    """A message when the form came back too fast or without a valid stamp."""
    try:
        issued = int(_signer().loads(request.form.get("stamp") or ""))
    except (BadSignature, ValueError, TypeError):
        return "页面已过期,请确认内容后再次提交 / the form has expired: please check what you wrote and submit it again"
    wait = current_app.config.get("PUBLIC_MIN_FILL_SECONDS", MIN_FILL_SECONDS)
    if time.time() - issued < wait:
        return "提交过快,请确认内容后再次提交 / that was sent too quickly: please check what you wrote and submit it again"
    return None


def _bucket() -> str:
    addr = (request.remote_addr or "").encode()
    return hmac.new(str(current_app.config["SECRET_KEY"]).encode(), addr, hashlib.sha256).hexdigest()


def _rate_limited(kind: str) -> bool:
    limit = current_app.config.get("PUBLIC_RATE_LIMITS", RATE_LIMITS).get(kind, 5)
    since = audit.db_time() - RATE_WINDOW
    with xw().db.read() as s:
        used = s.scalar(select(func.count()).select_from(PublicSubmission)
                        .where(PublicSubmission.bucket == _bucket(), PublicSubmission.kind == kind,
                               PublicSubmission.at >= since)) or 0
    return used >= limit


def _count_submission(kind: str) -> None:
    now = audit.db_time()
    with xw().db.write() as s:
        s.execute(delete(PublicSubmission).where(PublicSubmission.at < now - timedelta(days=1)))
        s.add(PublicSubmission(bucket=_bucket(), kind=kind, at=now))


def _gate(kind: str, text: str, min_chars: int, too_short: str) -> tuple[dict[str, str], str | None, int | None]:
    """The checks every public submission passes before the engine sees it: the honeypot, the
    text's length, the signed form stamp (not sent too fast) and the sender's hourly limit.
    Returns (errors, message, status): status None means go ahead."""
    if request.form.get(HONEYPOT):
        return {}, "提交未成功,请再试一次 / not accepted: please try again", 422
    if len(text) < min_chars:
        return {"text": too_short}, None, 422
    message = _check_stamp()
    if message is not None:
        return {}, message, 422
    if _rate_limited(kind):
        return {}, LIMITED, 429
    return {}, None, None


def _form(template: str, status: int = 200, **context):
    response = current_app.make_response((render_template(template, stamp=form_stamp(), **context), status))
    response.headers["Cache-Control"] = "no-store"
    return response


LIMITED = ("提交太频繁,请一小时后再试;您填写的内容已保留在下面 / "
           "too many submissions from this network: please try again in an hour; what you wrote is kept below")


@bp.route("/case/<code>/objection", methods=["GET", "POST"])
def objection(code: str):
    page = _case_page(code)
    sent = {k: (request.form.get(k) or "").strip() for k in ("text", "name", "phone")}
    if request.method == "GET" or not page["notices"]:
        status = 200 if request.method == "GET" else 409
        return _form("public/objection.html", status, c=page, sent=sent, errors={},
                     message=None if page["notices"] else _("本事项当前不在公示期内,不能提出异议"))
    errors, message, status = _gate("objection", sent["text"], 5, _("请写明异议内容(至少5个字)"))
    if status is None:
        status = 422
        try:
            done = xw().file_objection(page["raw_code"], sent["text"], sent["name"] or None, sent["phone"] or None)
        except InvalidData as exc:
            errors = {k: str(v) for k, v in exc.errors.items()}
            message = exc.message
        except Conflict as exc:
            message, status = exc.message, 409
        else:
            _count_submission("objection")
            url = objection_url(done["receipt_code"])
            return _form("public/objection_done.html", 200, c=page, done=done, url=url, qr=qr_svg(url, 4))
    return _form("public/objection.html", status, c=page, sent=sent, errors=errors, message=message)


def objection_url(receipt: str) -> str:
    return url_for("public.objection_track", receipt=cases.format_tracking_code(cases.normalize_tracking_code(receipt)),
                   _external=True)


def _objection_page(receipt: str) -> dict:
    with xw().db.read() as s:
        row = objections.by_receipt(s, receipt)
        if row is None:
            abort(404)
        case_id = row.case_id
    xw().fire_due(case_id)  # a notice period that ended shows as ended
    with xw().db.read() as s:
        page = pr.objection_page(s, receipt)
    if page is None:
        abort(404)
    return page


def _private(body):
    """A page only the holder of a receipt code should see (it shows the objection's text): never
    stored by a shared cache."""
    response = current_app.make_response(body)
    response.headers["Cache-Control"] = "no-store"
    response.vary.update(("Cookie", "Accept-Language"))
    return response


@bp.get("/objection/<receipt>")
def objection_track(receipt: str):
    """The objector's tracking page, by the receipt code: received → verified → how it ended."""
    o = _objection_page(receipt)
    return _private(render_template("public/objection_track.html", o=o))


@bp.get("/objection/<receipt>/receipt")
def objection_receipt(receipt: str):
    """The printable receipt of an objection (code and QR code of its tracking page)."""
    o = _objection_page(receipt)
    url = objection_url(o["receipt_code"])
    return _private(render_template("public/objection_receipt.html", o=o, url=url, qr=qr_svg(url, 5)))


@bp.route("/<org_code>/report", methods=["GET", "POST"])
def report(org_code: str):
    org = _board_org(org_code)
    sent = {k: (request.form.get(k) or "").strip() for k in ("text", "name", "phone", "topic")}
    context = {"org": org, "topics": rules.REPORT_TOPICS, "max_files": rules.REPORT_MAX_FILES,
               "limit": attachments.size_text(attachments.max_bytes())}
    if request.method == "GET":
        return _form("public/report.html", org=org, sent=sent, errors={}, message=None, **{
            k: v for k, v in context.items() if k != "org"})
    errors, message, status = _gate("report", sent["text"], 10, _("请写明举报内容(至少10个字)"))
    if status is None:
        status = 422
        files = [(part.filename or "", part.read()) for part in request.files.getlist("photos")]
        files = [(n, c) for n, c in files if n or c]
        try:
            done = xw().report(org.code, sent["text"], topic=sent["topic"], name=sent["name"] or None,
                               phone=sent["phone"] or None, files=files)
        except InvalidData as exc:
            names = {"report_text": "text", "reporter_name": "name", "reporter_phone": "phone",
                     attachments.FIELD: "photos"}
            errors = {names.get(k, k): str(v) for k, v in exc.errors.items()}
            message = exc.message
        else:
            _count_submission("report")
            return _form("public/report_done.html", 200, org=org, done=done,
                         url=case_url(done["tracking_code"]), qr=qr_svg(case_url(done["tracking_code"])))
    return _form("public/report.html", status, sent=sent, errors=errors, message=message, **context)
