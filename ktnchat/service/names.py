# Username rules (seed 001: letters A-Z, a-z and digits 0-9 only).
# Rules: names are compared case-insensitively (name_key) so "Alice" cannot sit beside
# "alice" or evade anything aimed at her; the display form keeps the case as typed.
from __future__ import annotations

import re

from ktnchat.service.errors import InvalidUsername

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9]+")
# The 2014 edition (seed 000) also allows underscores; only its clients may log in so.
USERNAME_PATTERN_2014 = re.compile(r"[A-Za-z0-9_]+")
RESERVED_NAMES = frozenset({"server"})


def name_key(name: str) -> str:
    """The case-insensitive identity of a name."""
    return name.lower()


def validate_username(candidate: object, max_chars: int, underscores: bool = False) -> str:
    """Return the username to use, or raise InvalidUsername saying why.

    `underscores`: also allow "_" (the 2014 edition's rule)."""
    if not isinstance(candidate, str) or not candidate.strip():
        raise InvalidUsername("send login <username>")
    name = candidate.strip()
    if len(name) > max_chars:
        raise InvalidUsername(f"at most {max_chars} characters")
    pattern = USERNAME_PATTERN_2014 if underscores else USERNAME_PATTERN
    if not pattern.fullmatch(name):
        allowed = "the letters A-Z, a-z, the digits 0-9" + (" and _" if underscores else "")
        raise InvalidUsername(f"use only {allowed}")
    if name_key(name) in RESERVED_NAMES:
        raise InvalidUsername(f"{name} is reserved")
    return name
