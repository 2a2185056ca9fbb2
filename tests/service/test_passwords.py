# Password hashing, verification, secret comparison and password rules.
# scrypt hashes cost ~50 ms each and PBKDF2 ones more, so hashes are made once per module.
from __future__ import annotations

import base64
import hashlib
from typing import Optional

import pytest

from ktnchat.service import passwords
from ktnchat.service.passwords import (
    MAX_PASSWORD_CHARS,
    MIN_PASSWORD_CHARS,
    check_password_rules,
    hash_password,
    secret_matches,
    verify_password,
)

PASSWORD = "correct horse battery staple ✓"

needs_scrypt = pytest.mark.skipif(
    not hasattr(hashlib, "scrypt"), reason="this Python's OpenSSL has no scrypt"
)


@pytest.fixture(scope="module")
def scrypt_hash() -> str:
    if not hasattr(hashlib, "scrypt"):
        pytest.skip("this Python's OpenSSL has no scrypt")
    return hash_password(PASSWORD)


@pytest.fixture(scope="module")
def pbkdf2_hash() -> str:
    with pytest.MonkeyPatch.context() as patch:
        patch.delattr(hashlib, "scrypt", raising=False)
        return hash_password(PASSWORD)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- formats and round trips ------------------------------------------------------------


@needs_scrypt
def test_scrypt_format_and_round_trip(scrypt_hash: str) -> None:
    kind, n, r, p, salt, digest = scrypt_hash.split("$")
    assert (kind, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(digest)) == 32
    assert verify_password(PASSWORD, scrypt_hash)
    assert not verify_password(PASSWORD + "x", scrypt_hash)
    assert not verify_password("", scrypt_hash)


def test_pbkdf2_format_and_round_trip(pbkdf2_hash: str) -> None:
    kind, iterations, salt, digest = pbkdf2_hash.split("$")
    assert (kind, iterations) == ("pbkdf2_sha256", "600000")
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(digest)) == 32
    assert verify_password(PASSWORD, pbkdf2_hash)
    assert not verify_password("correct horse battery staple", pbkdf2_hash)


def test_pbkdf2_matches_an_independent_computation() -> None:
    salt = bytes(range(16))
    digest = hashlib.pbkdf2_hmac("sha256", b"s3cret-pass", salt, 1000, 32)
    stored = f"pbkdf2_sha256$1000${b64(salt)}${b64(digest)}"
    assert verify_password("s3cret-pass", stored)
    assert not verify_password("s3cret-pasS", stored)


@needs_scrypt
def test_scrypt_matches_an_independent_computation() -> None:
    salt = bytes(range(16))
    digest = hashlib.scrypt(b"s3cret-pass", salt=salt, n=16, r=1, p=1, dklen=32)
    stored = f"scrypt$16$1$1${b64(salt)}${b64(digest)}"
    assert verify_password("s3cret-pass", stored)
    assert not verify_password("s3cret-pasS", stored)


@needs_scrypt
def test_same_password_hashes_differently(scrypt_hash: str) -> None:
    other = hash_password(PASSWORD)
    assert other != scrypt_hash
    assert other.split("$")[4] != scrypt_hash.split("$")[4]  # salts differ
    assert verify_password(PASSWORD, other)


def test_same_password_hashes_differently_pbkdf2(
    pbkdf2_hash: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(passwords, "PBKDF2_ITERATIONS", 1000)  # keep this one cheap
    monkeypatch.delattr(hashlib, "scrypt", raising=False)
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)


@needs_scrypt
def test_scrypt_hash_does_not_verify_where_scrypt_is_missing(
    scrypt_hash: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(hashlib, "scrypt")
    assert not verify_password(PASSWORD, scrypt_hash)


def test_composed_and_decomposed_accents_are_one_password() -> None:
    salt = bytes(16)
    composed = "caf\u00e9-latte"
    decomposed = "cafe\u0301-latte"
    digest = hashlib.pbkdf2_hmac("sha256", composed.encode("utf-8"), salt, 1000, 32)
    stored = f"pbkdf2_sha256$1000${b64(salt)}${b64(digest)}"
    assert verify_password(composed, stored)
    assert verify_password(decomposed, stored)


def test_lone_surrogates_hash_without_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "PBKDF2_ITERATIONS", 1000)
    monkeypatch.delattr(hashlib, "scrypt", raising=False)
    stored = hash_password("abc\ud800def")
    assert verify_password("abc\ud800def", stored)
    assert not verify_password("abc\ud801def", stored)


# --- malformed stored strings -----------------------------------------------------------

SALT = b64(bytes(16))
DIGEST = b64(bytes(32))

MALFORMED = [
    "",
    "$",
    "$$$$$",
    "scrypt",
    "plaintext-password",
    "scrypt$16384$8$1$" + SALT,  # too few fields
    f"scrypt$16384$8$1${SALT}${DIGEST}$extra",
    f"SCRYPT$16384$8$1${SALT}${DIGEST}",
    f"scrypt$16385$8$1${SALT}${DIGEST}",  # n not a power of two
    f"scrypt$1$8$1${SALT}${DIGEST}",
    f"scrypt$0$8$1${SALT}${DIGEST}",
    f"scrypt$-16384$8$1${SALT}${DIGEST}",
    f"scrypt$+16384$8$1${SALT}${DIGEST}",
    f"scrypt$ 16384$8$1${SALT}${DIGEST}",
    f"scrypt$16_384$8$1${SALT}${DIGEST}",
    f"scrypt$016384$8$1${SALT}${DIGEST}",
    f"scrypt$\u0661\u0666$8$1${SALT}${DIGEST}",  # Arabic-Indic digits
    f"scrypt$16384.0$8$1${SALT}${DIGEST}",
    f"scrypt$$8$1${SALT}${DIGEST}",
    f"scrypt$1073741824$8$1${SALT}${DIGEST}",  # 1 TiB of memory
    f"scrypt$99999999999999999999$8$1${SALT}${DIGEST}",
    f"scrypt$16384$0$1${SALT}${DIGEST}",
    f"scrypt$16384$8$0${SALT}${DIGEST}",
    f"scrypt$16384$8$1000${SALT}${DIGEST}",  # p out of bounds
    f"scrypt$16384$8$1$${DIGEST}",  # empty salt
    f"scrypt$16384$8$1${SALT}$",  # empty hash
    f"scrypt$16384$8$1$not*base64${DIGEST}",
    f"scrypt$16384$8$1${SALT}$AAA",  # bad padding
    f"scrypt$16384$8$1${b64(bytes(2))}${DIGEST}",  # salt too short
    f"scrypt$16384$8$1${SALT}${b64(bytes(4))}",  # hash too short
    f"scrypt$16384$8$1${SALT}${b64(bytes(1000))}",  # hash too long
    f"scrypt$16384$8$1${SALT}${DIGEST}\n",
    f"scrypt$16384$8$1${SALT}\u00e9${DIGEST}",
    f"pbkdf2_sha256$600000${SALT}",
    f"pbkdf2_sha256$600000${SALT}${DIGEST}$x",
    f"pbkdf2_sha256$0${SALT}${DIGEST}",
    f"pbkdf2_sha256$-1${SALT}${DIGEST}",
    f"pbkdf2_sha256$abc${SALT}${DIGEST}",
    f"pbkdf2_sha256$99999999999${SALT}${DIGEST}",  # would run for hours
    f"pbkdf2_sha512$600000${SALT}${DIGEST}",
    f"pbkdf2_sha256$600000$!!!!${DIGEST}",
    f"pbkdf2_sha256$600000${SALT}$====",
    f"$pbkdf2_sha256$600000${SALT}${DIGEST}",
    "\x00" * 100,
    "$" * 10_000,
]


@pytest.mark.parametrize("stored", MALFORMED)
def test_malformed_stored_strings_are_false(stored: str) -> None:
    assert verify_password(PASSWORD, stored) is False


@pytest.mark.parametrize("stored", [None, 42, b"scrypt$16384$8$1$", ["scrypt"]])
def test_non_strings_are_false(stored: object) -> None:
    assert verify_password(PASSWORD, stored) is False  # type: ignore[arg-type]


def test_wrong_hash_with_valid_shape_is_false() -> None:
    assert not verify_password(PASSWORD, f"pbkdf2_sha256$1000${SALT}${DIGEST}")


# --- secrets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "secret", "expected"),
    [
        ("hunter2-admin", "hunter2-admin", True),
        ("hunter2-admin", "hunter2-Admin", False),
        ("hunter2-admin", "hunter2-admin ", False),
        ("hunter2", "hunter2-admin", False),
        ("", "", False),
        ("", "secret", False),
        ("secret", "", False),
        ("pässwörd", "pässwörd", True),
        ("pässwörd", "passwords", False),
        ("\ud800", "\ud800", True),  # lone surrogates do not raise
    ],
)
def test_secret_matches(given: str, secret: str, expected: bool) -> None:
    assert secret_matches(given, secret) is expected


# --- rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("a" * MIN_PASSWORD_CHARS, None),
        ("a" * MAX_PASSWORD_CHARS, None),
        ("pässwörd✓🔑", None),
        ("a" * (MIN_PASSWORD_CHARS - 1), "at least"),
        ("", "at least"),
        ("a" * (MAX_PASSWORD_CHARS + 1), "at most"),
        ("has space", "whitespace"),
        ("tab\tinside", "whitespace"),
        ("newline\n!", "whitespace"),
        ("nbsp\u00a0inside", "whitespace"),
        ("ideographic\u3000", "whitespace"),
        ("bell\x07inside", "control"),
        ("del\x7finside", "control"),
        ("c1\x85inside", "whitespace"),  # NEL is whitespace as well as control
        ("c1\x9binside", "control"),
        ("nul\x00inside", "control"),
        ("half\ud800pair", "control"),
    ],
)
def test_password_rules(password: str, problem: Optional[str]) -> None:
    reason = check_password_rules(password)
    if problem is None:
        assert reason is None
    else:
        assert reason is not None and problem in reason
        assert password not in reason or not password


def test_reasons_never_quote_the_password() -> None:
    for password in ["short", "x" * 500, "has space!", "bell\x07bell"]:
        reason = check_password_rules(password)
        assert reason is not None and password not in reason
