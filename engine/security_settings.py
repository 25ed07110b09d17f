"""The settings of the hardening (#13), read in this one place from the environment (docs/security.md
lists them). Each is read when used, so a test or a deployment can change it without a restart of the
module; nothing here is stored in the database.

=============================  =====================================================  ================
variable                       what                                                   default
=============================  =====================================================  ================
XIAOWEI_SIGNING_KEY            the district's Ed25519 private key (PEM file) that     xiaowei-signing.key
                               signs audit checkpoints; keep it off the database
                               host and readable only by the signer
XIAOWEI_CHECKPOINT_MINUTES     how often ``tick`` makes a checkpoint (when heads      10
                               moved)
XIAOWEI_ARGON2                 argon2id cost "time,memory KiB,parallelism"            2,19456,1
XIAOWEI_UPLOAD_QUOTA_MB        evidence a user may upload per day (Beijing time)      200
XIAOWEI_PDF_RENDERS            PDFs printed at once by one process                    2
XIAOWEI_PDF_QUEUE              PDF requests that may wait for a free printer          8
XIAOWEI_HSTS_SECONDS           Strict-Transport-Security max-age over HTTPS           31536000
=============================  =====================================================  ================
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_KEY_FILE = "xiaowei-signing.key"


def _int(name: str, default: int, *, low: int = 0, high: int = 2**31) -> int:
    try:
        value = int(os.environ.get(name) or default)
    except ValueError:
        value = default
    return min(max(value, low), high)


def signing_key_path() -> Path:
    return Path(os.environ.get("XIAOWEI_SIGNING_KEY") or DEFAULT_KEY_FILE)


def checkpoint_minutes() -> int:
    return _int("XIAOWEI_CHECKPOINT_MINUTES", 10, low=1, high=24 * 60)


def argon2_cost() -> tuple[int, int, int]:
    """(time cost, memory in KiB, parallelism). Default: OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane),
    chosen over RFC 9106's 64 MiB so that eight sign-ins at once stay within 160 MB on a village server;
    raise it where memory allows (hashes record their cost and are upgraded at the next sign-in)."""
    raw = os.environ.get("XIAOWEI_ARGON2") or "2,19456,1"
    try:
        t, m, p = (int(x) for x in raw.split(","))
    except ValueError:
        t, m, p = 2, 19456, 1
    p = max(1, p)
    return max(1, t), max(8 * p, m), p


def upload_quota_bytes() -> int:
    return _int("XIAOWEI_UPLOAD_QUOTA_MB", 200, low=1, high=100_000) * 1024 * 1024


def pdf_renders() -> int:
    return _int("XIAOWEI_PDF_RENDERS", 2, low=1, high=32)


def pdf_queue() -> int:
    return _int("XIAOWEI_PDF_QUEUE", 8, low=0, high=1000)


def hsts_seconds() -> int:
    return _int("XIAOWEI_HSTS_SECONDS", 31_536_000, low=0, high=63_072_000)
