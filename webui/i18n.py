"""Languages of the pages: Simplified Chinese first (the source strings), English second.

Templates mark text with ``{{ _('中文') }}`` / ``{% trans %}…{% endtrans %}`` (Jinja's i18n extension);
the English catalogue is ``webui/translations/en/LC_MESSAGES/messages.po`` (Babel format, msgid = the
Chinese text). It is read once at start-up with Babel — no compiled ``.mo`` files to keep in step.
``make messages`` extracts the marked strings and updates the catalogue; a test fails when a marked
string has no English.

The language is the ``xw_lang`` cookie (set by ``/lang/<code>``), else the browser's Accept-Language
when it prefers English, else Chinese. Engine messages are bilingual ("中文 / English"): the
``lang_part`` filter shows the half for the page's language.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from flask import Blueprint, Flask, g, has_request_context, make_response, redirect, request

LANGUAGES = {"zh": "中文", "en": "English"}
DEFAULT = "zh"
COOKIE = "xw_lang"
CATALOGUES = Path(__file__).resolve().parent / "translations"

bp = Blueprint("i18n", __name__)


@lru_cache(maxsize=None)
def catalogue(lang: str) -> dict[str, str | tuple[str, ...]]:
    """msgid → translation for ``lang`` (empty for the source language or a missing catalogue)."""
    path = CATALOGUES / lang / "LC_MESSAGES" / "messages.po"
    if lang == DEFAULT or not path.exists():
        return {}
    from babel.messages.pofile import read_po

    with path.open("rb") as fh:
        cat = read_po(fh, locale=lang)
    out: dict[str, str | tuple[str, ...]] = {}
    for message in cat:
        if not message.id or message.fuzzy:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        if message.context:  # pgettext: the same Chinese word meaning different things
            key = f"{message.context}\x04{key}"
        if isinstance(message.string, (list, tuple)):
            if all(message.string):
                out[key] = tuple(message.string)
        elif message.string:
            out[key] = message.string
    return out


def current() -> str:
    if not has_request_context():  # e.g. a command or a benchmark calling view helpers directly
        return DEFAULT
    lang = g.get("lang")
    if lang is None:
        lang = choose(request.cookies.get(COOKIE), request.accept_languages.best_match(["zh", "en"]))
        g.lang = lang
    return lang


def choose(cookie: str | None, accepted: str | None) -> str:
    if cookie in LANGUAGES:
        return cookie
    return accepted if accepted in LANGUAGES else DEFAULT


def gettext(message: str, **variables) -> str:
    text = catalogue(current()).get(message, message)
    if isinstance(text, tuple):
        text = text[0]
    return text % variables if variables else text


def pgettext(context: str, message: str, **variables) -> str:
    """gettext for a word whose English depends on where it is used (``pgettext('warning', '已办结')``)."""
    text = catalogue(current()).get(f"{context}\x04{message}", message)
    if isinstance(text, tuple):
        text = text[0]
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables) -> str:
    text = catalogue(current()).get(singular)
    if isinstance(text, tuple):
        chosen = text[0] if n == 1 else text[-1]
    else:
        chosen = singular if n == 1 else plural
    if not variables:  # Jinja's newstyle wrapper formats the result itself (with num and every variable)
        return chosen
    variables.setdefault("num", n)
    return chosen % variables


def lang_part(message: object) -> str:
    """The half of a bilingual engine message ("中文 / English") for the page's language."""
    text = "" if message is None else str(message)
    if " / " not in text:
        return text
    zh, en = text.split(" / ", 1)
    return en if current() == "en" else zh


def _safe_next(target: str | None) -> str:
    """Only a plain path on this site (no scheme, no host, no '//' or control-character tricks) may
    be returned to."""
    from .security import is_local_path

    return target if is_local_path(target) else "/"


@bp.get("/lang/<code>")
def switch(code: str):
    """Set the page language and go back to where the user was."""
    if code not in LANGUAGES:
        code = DEFAULT
    response = make_response(redirect(_safe_next(request.args.get("next"))))
    response.set_cookie(COOKIE, code, max_age=365 * 24 * 3600, samesite="Lax", httponly=True,
                        secure=request.is_secure)
    return response


def init_app(app: Flask) -> None:
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_callables(gettext, ngettext, newstyle=True,  # type: ignore[attr-defined]
                                            pgettext=pgettext)
    app.jinja_env.filters["lang_part"] = lang_part
    app.register_blueprint(bp)

    @app.context_processor
    def _lang() -> dict:
        return {"lang": current() if request else DEFAULT, "languages": LANGUAGES}
