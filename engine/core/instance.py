"""The instance folder of an embedded database: what the embedded default (SQLite, ``make run``,
``xiaowei serve``) keeps beside its database so that it needs no set-up — today the secret key that
signs session cookies, CSRF tokens and public form stamps.

Outside development the key comes from ``XIAOWEI_SECRET_KEY`` (the same on every web worker). On an
embedded SQLite file, without the variable, the first process makes a random key in
``instance/secret_key`` beside the database file (mode 0600, gitignored) and every later process on
that database — a restart, a second ``xiaowei serve``, gunicorn workers — reads the same one, so
sessions survive restarts and are accepted by every process. On PostgreSQL the variable is required.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from engine import settings
from engine.core.errors import XiaoweiError

KEY_FILE = "secret_key"


def folder(database_url: str) -> Path | None:
    """``instance/`` beside an SQLite database file; None for PostgreSQL or an in-memory database."""
    if not database_url.startswith("sqlite"):
        return None
    path = database_url.split(":///", 1)[1] if ":///" in database_url else ""
    path = path.split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path).resolve().parent / "instance"


def secret_key(database_url: str, *, testing: bool = False) -> str:
    """The key that signs sessions: ``XIAOWEI_SECRET_KEY``, else the embedded database's kept key
    (made on first use), else (a test app only) a random one; otherwise a clear refusal."""
    configured = settings.current().secret_key
    if configured:
        return configured
    place = folder(database_url)
    if place is None:
        if testing:
            return secrets.token_hex(32)
        raise XiaoweiError("未设置 XIAOWEI_SECRET_KEY:在 PostgreSQL 上运行时必须设置会话签名密钥(每个 Web 进程相同),"
                           "见 docs/deploy.md / XIAOWEI_SECRET_KEY is required outside the embedded SQLite default "
                           "(the same on every web worker): see docs/deploy.md")
    return _kept(place / KEY_FILE)


def _kept(path: Path) -> str:
    """Read the key file, or make it (atomically: of two processes starting at once, one writes it)."""
    try:
        text = path.read_text(encoding="ascii").strip()
        if len(text) >= 32:
            return text
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it a moment ago (or left it short: refuse to guess)
        text = path.read_text(encoding="ascii").strip()
        if len(text) < 32:
            raise XiaoweiError(f"密钥文件内容无效:{path} / the secret key file is not valid: {path}") from None
        return text
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key
