"""Evidence attachments: photos, scans and PDFs a cadre keeps at a step (需留存材料).

A file is accepted only when its first bytes are one of the known image or PDF formats and its
file name's extension (if any) agrees with them: a web page or program renamed ``.jpg`` is
refused as disguised. Accepted content is stored once in the ``blob`` table under its SHA-256
(the same photo uploaded twice is one row); a step's ``step_completed`` audit event names its files
by that hash, so the hash chain covers the evidence too.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any, Iterable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import settings
from . import audit
from .errors import InvalidData, NotFound
from storage.models import Blob, User

FIELD = "attachments"  # the error key of attachment problems (forms show it next to the file input)
MAX_FILES = 10  # per step
DEFAULT_MAX_MB = 10
NAME_LENGTH = 100
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

# media type → (Chinese name, file name extensions that agree with it)
TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "image/jpeg": ("JPEG 图片", (".jpg", ".jpeg", ".jpe", ".jfif")),
    "image/png": ("PNG 图片", (".png",)),
    "image/gif": ("GIF 图片", (".gif",)),
    "image/webp": ("WebP 图片", (".webp",)),
    "image/heic": ("HEIC 照片", (".heic", ".heif")),
    "application/pdf": ("PDF 文件", (".pdf",)),
}
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}


def max_bytes() -> int:
    """The size limit of one file: ``XIAOWEI_MAX_UPLOAD_MB`` megabytes (default 10; engine.settings)."""
    mb = settings.current().max_upload_mb
    return max(1, int(mb * 1024 * 1024))


def sniff(content: bytes) -> str | None:
    """The media type told by the content's first bytes, or None when it is no accepted format."""
    head = content[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "image/heic"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def clean_name(filename: str | None, media_type: str | None = None) -> str:
    """A file name fit to show: no folders, no control or direction characters, at most 100 characters
    (the extension kept)."""
    name = str(filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in unicodedata.normalize("NFC", name)
                   if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"))
    name = " ".join(name.split()).strip(" .")
    if not name:
        ext = TYPES[media_type][1][0] if media_type in TYPES else ""
        name = "附件" + ext
    if len(name) > NAME_LENGTH:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[:NAME_LENGTH - len(ext) - 1].rstrip() + "." + ext
        else:
            name = name[:NAME_LENGTH]
    return name


def _extension(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return ("." + ext.lower()) if dot and stem else ""


def size_text(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.1f}".removesuffix(".0") + " MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} B"


def check(content: bytes, filename: str | None) -> tuple[str, str]:
    """(media type, display name) of an acceptable file; InvalidData naming the file otherwise."""
    name = clean_name(filename)
    if not content:
        raise InvalidData(f"“{name}”是空文件 / {name} is empty", {FIELD: f"“{name}”是空文件"})
    limit = max_bytes()
    if len(content) > limit:
        raise InvalidData(f"“{name}”超过 {size_text(limit)} 的大小限制({size_text(len(content))}) / "
                          f"{name} is larger than {size_text(limit)}",
                          {FIELD: f"“{name}”超过 {size_text(limit)} 的大小限制"})
    media_type = sniff(content)
    if media_type is None:
        raise InvalidData(f"“{name}”不是可接受的照片或 PDF 文件(只收 JPEG、PNG、WebP、GIF、HEIC 图片和 PDF) / "
                          f"{name} is not an accepted image or PDF",
                          {FIELD: f"“{name}”不是可接受的照片或 PDF 文件"})
    ext = _extension(name)
    zh, extensions = TYPES[media_type]
    if ext and ext not in extensions:
        raise InvalidData(f"“{name}”的扩展名 {ext} 与文件内容({zh})不符,疑似伪装文件,已拒收 / "
                          f"{name}: the extension does not match its content ({media_type})",
                          {FIELD: f"“{name}”的扩展名与文件内容({zh})不符,已拒收"})
    return media_type, clean_name(filename, media_type)


def check_count(count: int) -> None:
    if count > MAX_FILES:
        raise InvalidData(f"每个步骤最多上传 {MAX_FILES} 个附件(本次 {count} 个)/ "
                          f"at most {MAX_FILES} files per step",
                          {FIELD: f"每个步骤最多上传 {MAX_FILES} 个附件"})


def store(session: Session, content: bytes, filename: str | None, username: str) -> dict[str, Any]:
    """Check and store one file (once per content); its reference ``{sha256, name, size, type}``."""
    media_type, name = check(content, filename)
    if session.scalar(select(User.id).where(User.username == username)) is None:
        raise NotFound(f"没有用户 {username} / no user {username}")
    digest = hashlib.sha256(content).hexdigest()
    if session.scalar(select(Blob.sha256).where(Blob.sha256 == digest)) is None:
        try:
            with session.begin_nested():  # a concurrent upload of the same content may win the insert
                session.add(Blob(sha256=digest, size=len(content), media_type=media_type, content=content,
                                 created_at=audit.db_time(), created_by=username))
                session.flush()
        except IntegrityError:
            pass
    return {"sha256": digest, "name": name, "size": len(content), "type": media_type}


def store_many(session: Session, files: Iterable[tuple[str | None, bytes]], username: str) -> list[dict[str, Any]]:
    """Check every file first (all or none are stored), then store them."""
    files = list(files)
    check_count(len(files))
    for filename, content in files:
        check(content, filename)
    return [store(session, content, filename, username) for filename, content in files]


def load(session: Session, sha256: str) -> Blob:
    """The stored file with this hash (NotFound if there is none)."""
    blob = session.get(Blob, str(sha256 or "").lower()) if _HEX64.match(str(sha256 or "").lower()) else None
    if blob is None:
        raise NotFound(f"没有该附件 / no file {str(sha256)[:64]}")
    return blob


def owners(session: Session, hashes: Iterable[str]) -> dict[str, str]:
    """sha256 → the user who first stored it, for the hashes that exist."""
    wanted = {h for h in hashes if isinstance(h, str) and _HEX64.match(h)}
    if not wanted:
        return {}
    return dict(session.execute(select(Blob.sha256, Blob.created_by).where(Blob.sha256.in_(wanted))).all())


def resolve(session: Session, refs: Iterable[Any] | None) -> list[dict[str, Any]]:
    """Checked references for a step's event: each names a stored file (size and type from the store;
    the name cleaned); duplicates dropped; at most :data:`MAX_FILES`."""
    result: list[dict[str, Any]] = []
    seen: set[str] = set()
    for ref in refs or []:
        if isinstance(ref, str):
            ref = {"sha256": ref}
        sha = ref.get("sha256") if isinstance(ref, dict) else None
        sha = sha.lower() if isinstance(sha, str) else ""
        if not _HEX64.match(sha):
            raise InvalidData("附件引用须为 64 位十六进制 SHA-256 / an attachment must name a file by its SHA-256",
                              {FIELD: "附件引用无效"})
        if sha in seen:
            continue
        seen.add(sha)
        row = session.execute(select(Blob.size, Blob.media_type).where(Blob.sha256 == sha)).first()
        if row is None:
            raise InvalidData(f"附件 {sha[:12]}… 不存在,请重新上传 / no stored file {sha}",
                              {FIELD: f"附件 {sha[:12]}… 不存在,请重新上传"})
        name = ref.get("name") if isinstance(ref.get("name"), str) else None
        result.append({"sha256": sha, "name": clean_name(name, row.media_type), "size": row.size,
                       "type": row.media_type})
    check_count(len(result))
    return result


def attached_to(events: Iterable[dict[str, Any]], sha256: str) -> dict[str, Any] | None:
    """The reference of ``sha256`` in a case's events (``event_dict``s), or None when it is not attached."""
    for ev in events:
        if ev.get("type") not in ("step_completed", "case_started"):
            continue
        data = ev.get("data", {})
        # A 码上举报's photos come with the case (case_started → public.attachments).
        refs = data.get("attachments") if ev.get("type") == "step_completed" else (data.get("public") or {}).get(
            "attachments")
        for ref in refs or []:
            if isinstance(ref, dict) and ref.get("sha256") == sha256:
                return ref
    return None
