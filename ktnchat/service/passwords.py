# Password hashing and secret comparison, standard library only.
# Rules: scrypt (n=2**14, r=8, p=1) where hashlib has it, else PBKDF2-HMAC-SHA256 with
# 600,000 iterations; every hash has its own 16-byte salt and names its own parameters,
# so either format verifies anywhere it can be computed. Passwords are NFC-normalised
# (clients may send composed or decomposed accents) and encoded UTF-8 with lone
# surrogates passed through, so encoding never fails. verify_password never raises and
# refuses stored parameters outside sane bounds (a corrupt record cannot stall the
# server). Comparisons are constant-time. No password, hash or secret ever goes into a
# log line or an exception message.
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import unicodedata
from typing import Callable, Optional, Tuple

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
PBKDF2_ITERATIONS = 600_000
SALT_BYTES = 16
HASH_BYTES = 32

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 128

# Bounds on what a stored hash may ask for before verify_password refuses to compute it.
_MAX_SCRYPT_MEMORY = 64 * 1024 * 1024  # bytes: 128 * n * r
_MAX_SCRYPT_P = 16
_MAX_PBKDF2_ITERATIONS = 10_000_000
_MIN_SALT_BYTES, _MAX_SALT_BYTES = 8, 64
_MIN_HASH_BYTES, _MAX_HASH_BYTES = 16, 64

_NUMBER = re.compile(r"[1-9][0-9]{0,9}")  # ASCII digits only, no sign, space, "_" or 0-prefix
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def _password_bytes(password: str) -> bytes:
    return unicodedata.normalize("NFC", password).encode("utf-8", "surrogatepass")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> Optional[bytes]:
    if not _B64.fullmatch(text):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _number(text: str) -> Optional[int]:
    return int(text) if _NUMBER.fullmatch(text) else None


def _scrypt() -> Optional[Callable[..., bytes]]:
    """hashlib.scrypt, or None where this Python's OpenSSL lacks it (looked up per call)."""
    return getattr(hashlib, "scrypt", None)


def hash_password(password: str) -> str:
    """A salted, self-describing hash of `password` for storage."""
    secret = _password_bytes(password)
    salt = secrets.token_bytes(SALT_BYTES)
    scrypt = _scrypt()
    if scrypt is not None:
        digest = scrypt(secret, salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=HASH_BYTES)
        return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"
    digest = hashlib.pbkdf2_hmac("sha256", secret, salt, PBKDF2_ITERATIONS, HASH_BYTES)
    return f"pbkdf2_sha256${PBKDF2_ITERATIONS}${_b64(salt)}${_b64(digest)}"


def _salt_and_hash(salt_text: str, hash_text: str) -> Optional[Tuple[bytes, bytes]]:
    salt, digest = _unb64(salt_text), _unb64(hash_text)
    if salt is None or digest is None:
        return None
    if not _MIN_SALT_BYTES <= len(salt) <= _MAX_SALT_BYTES:
        return None
    if not _MIN_HASH_BYTES <= len(digest) <= _MAX_HASH_BYTES:
        return None
    return salt, digest


def _recompute(password: str, stored: str) -> Optional[Tuple[bytes, bytes]]:
    """(expected, computed) digests, or None if `stored` is malformed or unusable here."""
    parts = stored.split("$")
    if parts[0] == "scrypt" and len(parts) == 6:
        n, r, p = _number(parts[1]), _number(parts[2]), _number(parts[3])
        pair = _salt_and_hash(parts[4], parts[5])
        scrypt = _scrypt()
        if n is None or r is None or p is None or pair is None or scrypt is None:
            return None
        if n < 2 or n & (n - 1) or p > _MAX_SCRYPT_P or 128 * n * r > _MAX_SCRYPT_MEMORY:
            return None
        salt, expected = pair
        computed = scrypt(
            _password_bytes(password),
            salt=salt,
            n=n,
            r=r,
            p=p,
            dklen=len(expected),
            maxmem=2 * _MAX_SCRYPT_MEMORY,
        )
        return expected, computed
    if parts[0] == "pbkdf2_sha256" and len(parts) == 4:
        iterations = _number(parts[1])
        pair = _salt_and_hash(parts[2], parts[3])
        if iterations is None or pair is None or iterations > _MAX_PBKDF2_ITERATIONS:
            return None
        salt, expected = pair
        computed = hashlib.pbkdf2_hmac(
            "sha256", _password_bytes(password), salt, iterations, len(expected)
        )
        return expected, computed
    return None


def verify_password(password: str, stored: str) -> bool:
    """Does `password` match `stored` (from hash_password)? False, never an exception,
    when `stored` is malformed, out of bounds or of a kind this Python cannot compute."""
    try:
        pair = _recompute(password, stored)
    except (ValueError, TypeError, AttributeError, MemoryError, OverflowError):
        return False
    return pair is not None and hmac.compare_digest(pair[0], pair[1])


def secret_matches(given: str, secret: str) -> bool:
    """Constant-time comparison of `given` with `secret` (e.g. the admin secret).

    Both are hashed first, so not even the secret's length leaks; False if either is
    empty (an unset secret never matches)."""
    if not given or not secret:
        return False
    given_digest = hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest()
    secret_digest = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(given_digest, secret_digest)


def check_password_rules(password: str) -> Optional[str]:
    """Why `password` is unacceptable as a new password, or None if it is fine.

    The reason never quotes the password."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"a password needs at least {MIN_PASSWORD_CHARS} characters"
    if len(password) > MAX_PASSWORD_CHARS:
        return f"a password may have at most {MAX_PASSWORD_CHARS} characters"
    for char in password:
        if char.isspace():
            return "a password may not contain spaces or other whitespace"
        if unicodedata.category(char) in ("Cc", "Cs"):
            return "a password may not contain control characters"
    return None
