"""The public side (no login, phone first, no JavaScript): the village or community board
(公开栏), 我们的钱包, 补贴去哪了, the procedures as flowcharts, a case's progress page reached by its
tracking code or QR code (流程到哪了), objections during a notice period (异议) and 码上举报.

Pages that show no form may be cached for a minute (``Cache-Control: public, max-age=60``); forms
carry the anonymous session's CSRF token and are never cached. Objections and reports are limited
per sender address and hour (a keyed hash, nothing else kept; one atomic counter, so concurrent
submissions cannot overrun it), carry a signed stamp that is good once and needs a few seconds of
filling in, and have a honeypot field; a refused submission is shown again with its text, never lost.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
import time
from datetime import timedelta
from functools import lru_cache

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, url_for
from itsdangerous import BadSignature, URLSafeSerializer
from markupsafe import Markup

from engine.core import attachments, audit, cases, checkpoints, limits, objections
from engine.services import public as rules
from engine.core.errors import Conflict, InvalidData

from engine.services import public_nav, public_reads as pr
from webui.i18n import gettext as _
from webui.security import xw

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

@bp.get("/")
def index():
    """Every township's boards: where a villager starts, and where error pages lead back to."""
    return _cached(render_template("public/index.html", groups=xw().read(public_nav.index)))


@bp.get("/<org_code>")
def board(org_code: str):
    with xw().db.read() as s:
        org = pr.board_org(s, org_code)
        if org is None:
            town = public_nav.township(s, org_code)
            if town is None:
                abort(404)
            return _cached(render_template("public/township.html", **town))
        page = {"org": org, "notices": pr.on_notice(s, org), "past": pr.past_notices(s, org),
                "groups": pr.edition_procedures(s, org), "cadres": pr.cadres(s, org), "changes": pr.changes(s, org),
                "checkpoint": checkpoints.summary(s)}
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


def _procedure(org_code: str, procedure_id: str):
    """The board's organization, a live procedure of its edition and its chart, or 404."""
    with xw().db.read() as s:
        org = pr.board_org(s, org_code)
        proc = pr.procedure(s, procedure_id)
        edition = "village" if org is not None and org.kind == "village" else "community"
        if org is None or proc is None or proc.current_version_id is None or proc.edition not in (edition, "both"):
            abort(404)
        version_id = pr.version_for(s, proc, org)  # the township's variant where it has published one
        d = pr.definition(s, version_id)
        svg = pr.diagram(version_id, d, (), ())
    return org, d, svg


@bp.get("/<org_code>/procedures/<procedure_id>")
def procedure(org_code: str, procedure_id: str):
    org, d, svg = _procedure(org_code, procedure_id)
    return _cached(render_template("public/procedure.html", org=org, d=d, svg=svg))


@bp.get("/<org_code>/procedures/<procedure_id>/chart.svg")
def procedure_chart(org_code: str, procedure_id: str):
    """A procedure's flowchart alone, at full size (one tap from its page on a phone)."""
    _org, _d, svg = _procedure(org_code, procedure_id)
    if not svg:
        abort(404)
    response = _cached(svg)
    response.headers["Content-Type"] = "image/svg+xml; charset=utf-8"
    return response


@bp.get("/track")
def track():
    code = cases.normalize_tracking_code(request.args.get("code") or "")
    if not code:
        return redirect(url_for(".board", org_code=request.args.get("org") or "")) if request.args.get("org") \
            else redirect(url_for(".index"))  # an empty lookup: back to the boards, not a dead end
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
                                     title=title, nl=False, omitsize=True)
    svg = out.getvalue().decode("utf-8")
    # a viewBox and its own size: the code scales down whole on a narrow screen, never clipped
    size = svg.split('viewBox="0 0 ', 1)[1].split(" ", 1)[0]
    return svg.replace(" viewBox=", f' width="{size}" height="{size}" viewBox=', 1)


@bp.app_template_global("public_case_qr")
def public_case_qr(code: str) -> Markup:
    """The QR code of a case's public progress page (staff step page header)."""
    return Markup(qr_svg(case_url(code), 2))


@bp.get("/case/<code>")
def case(code: str):
    page = _case_page(code)
    return _cached(render_template("public/case.html", c=page, qr=qr_svg(case_url(page["raw_code"]))))


@bp.get("/case/<code>/chart.svg")
def case_chart(code: str):
    """The case's flowchart alone, at full size: one tap from the step list on a phone."""
    page = _case_page(code)
    if not page["svg"]:
        abort(404)
    response = _cached(page["svg"])
    response.headers["Content-Type"] = "image/svg+xml; charset=utf-8"
    return response


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
    checkpoint = xw().read(checkpoints.summary)
    return _cached(render_template("public/receipt.html", c=page, url=url, qr=qr_svg(url, 5), checkpoint=checkpoint))


@bp.get("/checkpoint.json")
def checkpoint_json():
    """The latest signed checkpoint of the audit trail and the district's public key, for anyone to keep
    and to check exported trails against (``trailcheck --checkpoint``). ``?from=N``: with the proof
    that this tree extends the tree of N leaves (an older checkpoint one holds)."""
    raw = request.args.get("from", "")
    from_size = int(raw) if raw.isdigit() and len(raw) < 12 else None
    body = xw().read(checkpoints.published, from_size)
    if body is None:
        body = {"checkpoint": None, "message": "尚未生成签名检查点 / no checkpoint yet"}
    response = jsonify(body)
    response.headers["Cache-Control"] = CACHE
    return response


# --- forms: objections and reports ------------------------------------------------------------------

def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="xw-public-form")


def form_stamp() -> str:
    """A signed stamp: when the form was issued and a random nonce (each stamp is good once)."""
    return _signer().dumps([int(time.time()), secrets.token_urlsafe(16)])


EXPIRED = "页面已过期,请确认内容后再次提交 / the form has expired: please check what you wrote and submit it again"


def _check_stamp() -> tuple[str | None, str | None]:
    """(message, nonce): a message when the form came back too fast, too late or without a valid stamp."""
    try:
        issued, nonce = _signer().loads(request.form.get("stamp") or "")
        issued = int(issued)
        if not isinstance(nonce, str) or not 8 <= len(nonce) <= 64:
            raise ValueError(nonce)
    except (BadSignature, ValueError, TypeError):
        return EXPIRED, None
    age = time.time() - issued
    if age > limits.STAMP_MAX_AGE.total_seconds():
        return EXPIRED, None
    wait = current_app.config.get("PUBLIC_MIN_FILL_SECONDS", MIN_FILL_SECONDS)
    if age < wait:
        return ("提交过快,请确认内容后再次提交 / that was sent too quickly: please check what you wrote and submit it "
                "again"), None
    return None, nonce


def _bucket() -> str:
    addr = (request.remote_addr or "").encode()
    return hmac.new(str(current_app.config["SECRET_KEY"]).encode(), addr, hashlib.sha256).hexdigest()


def _limit_key(kind: str) -> str:
    return f"public:{kind}:{_bucket()}"


def _reserve(kind: str, nonce: str) -> str | None:
    """Use the form's stamp and reserve one of the sender's submissions this hour, atomically (one
    transaction, two single-statement upserts): a message when refused."""
    limit = current_app.config.get("PUBLIC_RATE_LIMITS", RATE_LIMITS).get(kind, 5)
    refused = xw().write(rules.reserve_submission, nonce, _limit_key(kind), limit)
    return {"used": USED, "limited": LIMITED}.get(refused or "")


def _release(kind: str) -> None:
    """The engine refused the submission's content: it does not count against the sender."""
    xw().write(rules.release_submission, _limit_key(kind))


def _count_submission(kind: str) -> None:
    """A log of accepted submissions by the sender's keyed hash (the limit itself is the counter)."""
    now = audit.db_time()
    xw().write(rules.count_submission, _bucket(), kind, now)


def _gate(kind: str, text: str, min_chars: int, too_short: str) -> tuple[dict[str, str], str | None, int | None]:
    """The checks every public submission passes before the engine sees it: the honeypot, the
    text's length, the signed single-use form stamp (not sent too fast, not twice) and the sender's
    hourly limit (reserved atomically). Returns (errors, message, status): status None means go
    ahead — and then the caller must :func:`_release` if the engine refuses the content."""
    if request.form.get(HONEYPOT):
        return {}, "提交未成功,请再试一次 / not accepted: please try again", 422
    if len(text) < min_chars:
        return {"text": too_short}, None, 422
    message, nonce = _check_stamp()
    if message is not None or nonce is None:
        return {}, message, 422
    refused = _reserve(kind, nonce)
    if refused is USED:
        return {}, USED, 409
    if refused is not None:
        return {}, refused, 429
    return {}, None, None


def _form(template: str, status: int = 200, **context):
    response = current_app.make_response((render_template(template, stamp=form_stamp(), **context), status))
    response.headers["Cache-Control"] = "no-store"
    return response


LIMITED = ("提交太频繁,请一小时后再试;您填写的内容已保留在下面 / "
           "too many submissions from this network: please try again in an hour; what you wrote is kept below")
USED = ("这份表单已经提交过(可能点了两次提交),请查看是否已受理;如需再次提交,请确认下面的内容后重新提交 / "
        "this form was already sent (perhaps twice): please check, and submit again if needed")


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
            _release("objection")
            errors = {k: str(v) for k, v in exc.errors.items()}
            message = exc.message
        except Conflict as exc:
            _release("objection")
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
            _release("report")
            names = {"report_text": "text", "reporter_name": "name", "reporter_phone": "phone",
                     attachments.FIELD: "photos"}
            errors = {names.get(k, k): str(v) for k, v in exc.errors.items()}
            message = exc.message
        else:
            _count_submission("report")
            return _form("public/report_done.html", 200, org=org, done=done,
                         url=case_url(done["tracking_code"]), qr=qr_svg(case_url(done["tracking_code"])))
    return _form("public/report.html", status, sent=sent, errors=errors, message=message, **context)
