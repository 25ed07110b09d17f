"""Evidence files sent with a step (pages and API): read the uploads of a request, check references
to files stored earlier, and serve a case's files.

Files are stored (content-addressed, harmless to keep) before the step is completed; a reference
to a stored file is accepted only from the user who stored it, in the same session or not.
"""

from __future__ import annotations

import re
from typing import Any, Iterable
from urllib.parse import quote

from flask import Response, request, session

from engine.core import attachments
from engine.core.errors import InvalidData

from webui.i18n import gettext as _
from webui.security import xw

FIELD = attachments.FIELD
SESSION_KEY = "uploads"  # hashes this session stored (a file first stored by someone else is still theirs)
_REMEMBER = 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
FILE_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def received_files() -> list[tuple[str, bytes]]:
    """(file name, content) of every file part of the request; parts without a chosen file are skipped."""
    found: list[tuple[str, bytes]] = []
    for key in request.files:
        for part in request.files.getlist(key):
            content = part.read()
            if not part.filename and not content:
                continue  # a file input left empty
            found.append((part.filename or "", content))
    return found


def form_refs() -> list[dict[str, Any]]:
    """References kept on a re-shown form: hidden ``attachment`` = sha256 (and its display name)."""
    refs = []
    for sha in request.form.getlist("attachment"):
        sha = (sha or "").strip().lower()
        if sha:
            refs.append({"sha256": sha, "name": request.form.get(f"attachment_name.{sha}") or None})
    return refs


def check_own(refs: Iterable[Any], username: str) -> list[dict[str, Any]]:
    """The references as dicts if each names a stored file this user stored; InvalidData otherwise."""
    cleaned: list[dict[str, Any]] = []
    for ref in refs:
        if isinstance(ref, str):
            ref = {"sha256": ref}
        sha = ref.get("sha256") if isinstance(ref, dict) else None
        if not isinstance(sha, str) or not _HEX64.match(sha.lower()):
            raise InvalidData("附件引用须为 64 位十六进制 SHA-256 / an attachment must name a file by its SHA-256",
                              {FIELD: _("附件引用无效")})
        cleaned.append({**ref, "sha256": sha.lower()})
    owners = xw().file_owners([r["sha256"] for r in cleaned])
    mine = set(session.get(SESSION_KEY) or [])
    for ref in cleaned:
        sha = ref["sha256"]
        if sha not in owners:
            raise InvalidData(f"附件 {sha[:12]}… 不存在,请重新上传 / no stored file {sha}",
                              {FIELD: _("附件 %(file)s… 不存在,请重新上传", file=sha[:12])})
        if owners[sha] != username and sha not in mine:
            raise InvalidData(f"附件 {sha[:12]}… 不是您上传的,请重新上传 / {sha} was not uploaded by you",
                              {FIELD: _("附件 %(file)s… 不是您上传的,请重新上传", file=sha[:12])})
    return cleaned


def store_received(username: str, already: int = 0) -> list[dict[str, Any]]:
    """Check and store the request's files (all or none); their references."""
    files = received_files()
    if not files:
        return []
    attachments.check_count(already + len(files))
    stored = xw().store_files(files, username)
    remembered = [r["sha256"] for r in stored] + [h for h in session.get(SESSION_KEY) or []
                                                  if h not in {r["sha256"] for r in stored}]
    session[SESSION_KEY] = remembered[:_REMEMBER]
    return stored


def gather(username: str, refs: Iterable[Any]) -> list[dict[str, Any]]:
    """Earlier references (checked) followed by the request's new files (stored)."""
    kept = check_own(refs, username)
    merged = kept + store_received(username, already=len(kept))
    seen: set[str] = set()
    return [r for r in merged if not (r["sha256"] in seen or seen.add(r["sha256"]))]


def usable(refs: Iterable[Any], username: str) -> list[dict[str, Any]]:
    """The references of ``refs`` that may be shown again on a form (full: name, size, type)."""
    result = []
    for ref in refs:
        try:
            check_own([ref], username)
            with xw().db.read() as s:
                result.extend(attachments.resolve(s, [ref]))
        except InvalidData:
            continue
    seen: set[str] = set()
    return [r for r in result if not (r["sha256"] in seen or seen.add(r["sha256"]))][:attachments.MAX_FILES]


def file_response(ref: dict[str, Any], media_type: str, content: bytes) -> Response:
    """A stored file as a download: its sniffed type, never rendered by the browser as a page."""
    name = attachments.clean_name(ref.get("name"), media_type)
    ext = attachments.TYPES.get(media_type, ("", ("",)))[1][0]
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    if not fallback.strip("._") or fallback.count("_") > len(fallback) // 2:
        fallback = f"attachment-{ref['sha256'][:12]}{ext}"
    response = Response(content, mimetype=media_type)
    response.headers["Content-Disposition"] = (f"attachment; filename=\"{fallback}\"; "
                                               f"filename*=UTF-8''{quote(name, safe='')}")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = FILE_CSP
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response
