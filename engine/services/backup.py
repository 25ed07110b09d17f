"""Backups of the whole database, and restoring one (``xiaowei backup`` / ``xiaowei restore``).

* **SQLite** (the embedded default): an online copy through SQLite's backup API
  (:meth:`sqlite3.Connection.backup`): consistent while the server keeps running (WAL), page by page.
  Restoring copies the file back the same way, brings its schema up to date and verifies every chain.
* **PostgreSQL**: ``pg_dump --format=custom`` and ``pg_restore --clean --single-transaction`` (the
  PostgreSQL client programs must be installed, of the server's major version); without them the
  commands refuse with a message pointing to docs/deploy.md, which describes the routine (nightly
  ``pg_dump``, WAL archiving for point-in-time recovery).

A restored database is checked at once: :func:`restore` returns the chain reports of
:func:`engine.core.audit.verify` (every hash chain, the signed checkpoints, the replay of each case).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

from engine.core.errors import InvalidData, XiaoweiError
from storage import Database

SQLITE_HEADER = b"SQLite format 3\x00"
CUSTOM_DUMP_HEADER = b"PGDMP"


def _sqlite_path(db: Database) -> Path:
    path = db.url.split(":///", 1)[1].split("?", 1)[0] if ":///" in db.url else ""
    if not path or path == ":memory:":
        raise InvalidData("内存数据库无法备份 / an in-memory database cannot be backed up", {})
    return Path(path)


def _libpq_url(db: Database) -> str:
    """The URL as the PostgreSQL client programs take it (no SQLAlchemy driver name)."""
    return "postgresql://" + db.url.split("://", 1)[1]


def _client(program: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise XiaoweiError(f"未找到 PostgreSQL 客户端程序 {program}:请安装与服务器同版本的 postgresql-client,"
                           f"或按 docs/deploy.md 用 pg_dump/pg_restore 备份 / {program} not found: install the "
                           "PostgreSQL client programs of the server's version, or back up with pg_dump as "
                           "docs/deploy.md describes")
    return found


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout or "").strip().splitlines()
        raise XiaoweiError(f"{Path(command[0]).name} 失败 / failed: {lines[-1] if lines else done.returncode}")


def backup(db: Database, output: Path, *, overwrite: bool = False) -> dict:
    """Write a backup of the whole database to ``output``: ``{"file", "bytes", "format"}``."""
    output = Path(output)
    if output.exists() and not overwrite:
        raise InvalidData(f"文件已存在:{output}(用 --force 覆盖)/ the file exists: {output} (--force overwrites)", {})
    output.parent.mkdir(parents=True, exist_ok=True)
    if db.is_sqlite:
        source = _sqlite_path(db)
        if not source.exists():
            raise InvalidData(f"数据库文件不存在:{source} / no database file {source}", {})
        partial = output.with_name(output.name + ".partial")
        partial.unlink(missing_ok=True)
        src = sqlite3.connect(source)
        dst = sqlite3.connect(partial)
        try:
            with dst:
                src.backup(dst, pages=1024)  # online: other processes keep reading and writing meanwhile
        finally:
            dst.close()
            src.close()
        partial.replace(output)
        fmt = "sqlite"
    elif db.is_postgres:
        _run([_client("pg_dump"), "--format=custom", "--no-owner", "--file", str(output), _libpq_url(db)])
        fmt = "pg_dump"
    else:  # pragma: no cover - only the two databases are supported
        raise InvalidData(f"不支持的数据库 / unsupported database: {db.url}", {})
    return {"file": str(output), "bytes": output.stat().st_size, "format": fmt}


def _kind(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(16)
    if head.startswith(SQLITE_HEADER):
        return "sqlite"
    if head.startswith(CUSTOM_DUMP_HEADER):
        return "pg_dump"
    return "unknown"


def restore(db: Database, backup_file: Path) -> dict:
    """Replace the database's contents by ``backup_file`` (made by :func:`backup` on the same kind of
    database), bring the schema up to date and verify every chain: ``{"format", "chains", "events",
    "problems"}``. Stop the web processes and workers first."""
    from engine.core import audit

    backup_file = Path(backup_file)
    if not backup_file.is_file():
        raise InvalidData(f"备份文件不存在:{backup_file} / no backup file {backup_file}", {})
    kind = _kind(backup_file)
    if db.is_sqlite:
        if kind != "sqlite":
            raise InvalidData("这不是 SQLite 备份文件(PostgreSQL 的备份请恢复到 PostgreSQL)/ not an SQLite backup", {})
        src = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "alembic_version" not in tables or "audit_event" not in tables:
                raise InvalidData("这个 SQLite 文件不是小微的数据库备份 / not a Xiaowei database backup", {})
            target = _sqlite_path(db)
            target.parent.mkdir(parents=True, exist_ok=True)
            db.dispose()
            dst = sqlite3.connect(target)
            try:
                with dst:
                    src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    elif db.is_postgres:
        if kind != "pg_dump":
            raise InvalidData("这不是 pg_dump 备份文件(custom 格式)/ not a pg_dump backup (custom format)", {})
        db.dispose()
        _run([_client("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
              "--dbname", _libpq_url(db), str(backup_file)])
    else:  # pragma: no cover
        raise InvalidData(f"不支持的数据库 / unsupported database: {db.url}", {})
    db.upgrade()  # a backup from an older release gets the newer migrations
    with db.read() as s:
        reports = audit.verify(s)
    return {"format": kind, "chains": len(reports), "events": sum(r.events for r in reports),
            "problems": [f"{r.chain}: {p}" for r in reports for p in r.problems]}
