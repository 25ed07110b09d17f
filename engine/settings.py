"""Every setting of Xiaowei: its environment variable, type, default and meaning, in one place.

The environment is read here and nowhere else (a test fails when another module reads it). Values are
read once, on first use, into a frozen :class:`Settings`; :func:`reload` reads them again (tests that
change a variable call it). A value that does not parse falls back to its default, so a typo never
stops the server; ``xiaowei`` and the web app read the same values.

Standard library only: every layer may import this module, including :mod:`storage`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from datetime import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROCESSES = ROOT / "processes"


@dataclass(frozen=True)
class Setting:
    env: str  # the environment variable
    attr: str  # the attribute of :class:`Settings`
    default: Any
    parse: Callable[[str], Any]
    doc: str  # one line: what it does (docs/architecture.md lists them all; a test checks)


def _flag(text: str) -> bool:
    return text.strip() != "0"


def _hhmm(text: str) -> time:
    hours, _, minutes = text.strip().partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(text)
    return time(int(hours), int(minutes))  # ValueError beyond 23:59


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        return min(max(int(text), low), high)
    return parse


def _argon2(text: str) -> tuple[int, int, int]:
    t, m, p = (int(x) for x in text.split(","))
    p = max(1, p)
    return max(1, t), max(8 * p, m), p


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise ValueError(text)
    return value


SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", "database_url", "sqlite:///xiaowei.db", str,
            "the database: `sqlite:///FILE` (embedded, WAL mode; default `sqlite:///xiaowei.db` in the working "
            "directory) or `postgresql://user@host:port/db`"),
    Setting("XIAOWEI_PROCESSES", "processes_dir", DEFAULT_PROCESSES, Path,
            "the procedure library (BPMN files, `roles.yaml`, `categories.yaml`, `calendar.yaml`); default "
            "`processes/` of the checkout"),
    Setting("XIAOWEI_SECRET_KEY", "secret_key", None, str,
            "signs session cookies, CSRF tokens and public form stamps; required on PostgreSQL (the same on "
            "every web worker); unset on the embedded SQLite default, a random key is made once and kept in "
            "`instance/secret_key` beside the database file (gitignored), so restarts and a second process "
            "keep sessions"),
    Setting("XIAOWEI_COOKIE_SECURE", "cookie_secure", True, _flag,
            "`0` sends the session cookie over plain HTTP too (a workstation without TLS); default Secure"),
    Setting("XIAOWEI_TRUSTED_PROXIES", "trusted_proxies", 0, int,
            "number of reverse proxies in front: the client address is then taken from `X-Forwarded-For` "
            "(rate limits, login records); default 0, the header is ignored"),
    Setting("XIAOWEI_MAX_UPLOAD_MB", "max_upload_mb", 10.0, _positive_float,
            "size limit of one uploaded evidence file, in megabytes (default 10)"),
    Setting("XIAOWEI_SCRYPT_N", "scrypt_n", 2**14, int,
            "scrypt work factor of new password hashes (default 2^14; test suites and benchmarks lower it; "
            "each hash records its own)"),
    Setting("XIAOWEI_NOW", "now", None, str,
            "an ISO 8601 time the `xiaowei` command runs at instead of the clock (scripted timelines and "
            "tests); never read by the web app"),
    Setting("XIAOWEI_OFFICE_CLOSE", "office_close", time(17, 30), _hhmm,
            "the close of the office day in Beijing time (`HH:MM`, default 17:30): time limits counted in days "
            "end then"),
    # The hardening (#13, docs/security.md): read when used (:func:`fresh`), so a deployment or a test
    # can change them without restarting.
    Setting("XIAOWEI_SIGNING_KEY", "signing_key", Path("xiaowei-signing.key"), Path,
            "the district's Ed25519 private key (PEM file) that signs audit checkpoints; keep it off the "
            "database host, readable only by the signer (default `xiaowei-signing.key` in the working directory)"),
    Setting("XIAOWEI_SIGNING_PUBLIC_KEYS", "signing_public_keys", "", str,
            "more public keys (hex or files, comma-separated) whose checkpoints `audit verify` accepts: "
            "earlier keys after a rotation, or a verifier's copy of the published key"),
    Setting("XIAOWEI_CHECKPOINT_MINUTES", "checkpoint_minutes", 10, _bounded(1, 24 * 60),
            "how often `tick` signs a checkpoint over the chain heads that moved (default 10)"),
    Setting("XIAOWEI_ARGON2", "argon2_cost", (2, 19456, 1), _argon2,
            "argon2id cost of new password hashes as `time,memory KiB,parallelism` (default `2,19456,1`: "
            "OWASP's minimum; hashes record their cost and are upgraded at the next sign-in)"),
    Setting("XIAOWEI_UPLOAD_QUOTA_MB", "upload_quota_mb", 200, _bounded(1, 100_000),
            "evidence a user may upload per day, Beijing time, in megabytes (default 200)"),
    Setting("XIAOWEI_PDF_RENDERS", "pdf_renders", 2, _bounded(1, 32),
            "PDFs one process prints at once (default 2); more wait in a short queue"),
    Setting("XIAOWEI_PDF_QUEUE", "pdf_queue", 8, _bounded(0, 1000),
            "PDF requests that may wait for a free printer (default 8); beyond it the answer is “busy, retry”"),
    Setting("XIAOWEI_HSTS_SECONDS", "hsts_seconds", 31_536_000, _bounded(0, 63_072_000),
            "Strict-Transport-Security max-age sent over HTTPS (default one year; 0: none)"),
    Setting("XIAOWEI_PERSON_KEY", "person_key", None, str,
            "the key the person register derives its encryption and keyed-hash keys from (ID numbers, "
            "phones); unset, each database makes and keeps its own — set it in production and keep it "
            "outside the database (docs/people.md)"),
)


@dataclass(frozen=True)
class Settings:
    database_url: str
    processes_dir: Path
    secret_key: str | None
    cookie_secure: bool
    trusted_proxies: int
    max_upload_mb: float
    scrypt_n: int
    now: str | None
    office_close: time
    signing_key: Path
    signing_public_keys: str
    checkpoint_minutes: int
    argon2_cost: tuple[int, int, int]
    upload_quota_mb: int
    pdf_renders: int
    pdf_queue: int
    hsts_seconds: int
    person_key: str | None


assert [f.name for f in fields(Settings)] == [s.attr for s in SETTINGS]


def read(environ: dict[str, str] | None = None) -> Settings:
    """The settings of ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for s in SETTINGS:
        text = env.get(s.env)
        if text is None or text == "":
            values[s.attr] = s.default
            continue
        try:
            values[s.attr] = s.parse(text)
        except ValueError:
            values[s.attr] = s.default
    return Settings(**values)


_current: Settings | None = None


def current() -> Settings:
    """The settings of this process (read on first use)."""
    global _current
    if _current is None:
        _current = read()
    return _current


def fresh() -> Settings:
    """The settings as the environment has them now (for those read when used)."""
    return read()


def reload() -> Settings:
    """Read the environment again (after a test or a command changed a variable)."""
    global _current
    _current = read()
    return _current
