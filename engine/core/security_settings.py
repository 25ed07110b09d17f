"""The settings of the hardening (#13), as :mod:`engine.settings` reads them (docs/security.md lists
them). Each is read when used, so a test or a deployment can change it without a restart; nothing here
is stored in the database.

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

from pathlib import Path

from engine import settings

DEFAULT_KEY_FILE = "xiaowei-signing.key"


def signing_key_path() -> Path:
    return settings.fresh().signing_key


def signing_public_keys() -> list[str]:
    return [item.strip() for item in settings.fresh().signing_public_keys.split(",") if item.strip()]


def checkpoint_minutes() -> int:
    return settings.fresh().checkpoint_minutes


def argon2_cost() -> tuple[int, int, int]:
    """(time cost, memory in KiB, parallelism). Default: OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane),
    chosen over RFC 9106's 64 MiB so that eight sign-ins at once stay within 160 MB on a village server;
    raise it where memory allows (hashes record their cost and are upgraded at the next sign-in)."""
    return settings.fresh().argon2_cost


def upload_quota_bytes() -> int:
    return settings.fresh().upload_quota_mb * 1024 * 1024


def pdf_renders() -> int:
    return settings.fresh().pdf_renders


def pdf_queue() -> int:
    return settings.fresh().pdf_queue


def hsts_seconds() -> int:
    return settings.fresh().hsts_seconds
