"""Words for people in the page's language, for the services that shape pages (the public board).

The services do not know the request: the web app installs its translation functions here when it
starts (:func:`install`); without them (a command, a benchmark) the Chinese source text is used.
Strings marked with :func:`gettext` in the services are extracted with the web app's (babel.cfg).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

from engine.core import catalogue

CHINA = timedelta(hours=8)  # Beijing time: dates and months people see

_gettext: Callable[..., str] | None = None
_english: Callable[[], bool] | None = None


def install(gettext: Callable[..., str], english: Callable[[], bool]) -> None:
    """Called by the web app: its ``gettext(text, **values)`` and whether the page is in English."""
    global _gettext, _english
    _gettext, _english = gettext, english


def gettext(text: str, **values: Any) -> str:
    if _gettext is not None:
        return _gettext(text, **values)
    return text % values if values else text


def role_zh(key: Any) -> str:
    """The role's name: Chinese, or the registry's English name on an English page."""
    role = catalogue.roles().get(str(key or ""))
    if role is None:
        return str(key or "")
    return role.en if role.en and _english is not None and _english() else role.zh


def category_zh(code: Any) -> str:
    """The category's name: Chinese, or the registry's English name on an English page."""
    cat = catalogue.categories().get(str(code or ""))
    if cat is None:
        return str(code or "")
    return cat.en if cat.en and _english is not None and _english() else cat.zh
