"""Password hashes: argon2id (argon2-cffi, at the cost of XIAOWEI_ARGON2: OWASP's parameters by default)
for every new hash; older scrypt hashes (``scrypt$n$r$p$salt$hash``) still verify and are replaced by
argon2id at the next sign-in (:func:`needs_rehash`), as are argon2id hashes of another cost."""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from . import security_settings


@lru_cache(maxsize=8)
def _hasher(cost: tuple[int, int, int]) -> PasswordHasher:
    t, m, p = cost
    return PasswordHasher(time_cost=t, memory_cost=m, parallelism=p, hash_len=32, salt_len=16, type=Type.ID)


def hasher() -> PasswordHasher:
    return _hasher(security_settings.argon2_cost())


def hash_password(password: str) -> str:
    """An argon2id hash (``$argon2id$v=19$m=…,t=…,p=…$salt$hash``) at the configured cost."""
    return hasher().hash(password)


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (argon2id, or a legacy scrypt hash); never raises."""
    stored = stored or ""
    if stored.startswith("$argon2"):
        try:
            return hasher().verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    return _check_scrypt(password, stored)


def needs_rehash(stored: str) -> bool:
    """True for scrypt hashes and argon2 hashes made at another cost than the configured one."""
    if not (stored or "").startswith("$argon2"):
        return True
    try:
        return hasher().check_needs_rehash(stored)
    except InvalidHashError:
        return True


def _check_scrypt(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        n_, r_, p_ = int(n), int(r), int(p)
        if not (1 < n_ <= 2**20 and 0 < r_ <= 32 and 0 < p_ <= 16):
            return False
        candidate = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=n_, r=r_, p=p_,
                                   dklen=len(digest) // 2, maxmem=256 * 1024 * 1024)
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(candidate.hex(), digest)
