# Username rules (seed 001: letters A-Z, a-z and digits 0-9 only).
# Rules: names are compared case-insensitively (name_key) so "Alice" cannot sit beside
# "alice" or evade anything aimed at her; the display form keeps the case as typed.
from __future__ import annotations

import re

from ktnchat.service.errors import InvalidUsername

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9]+")
RESERVED_NAMES = frozenset({"server"})


def name_key(name: str) -> str:
    """The case-insensitive identity of a name."""
    return name.lower()


def validate_username(candidate: object, max_chars: int) -> str:
    """Return the username to use, or raise InvalidUsername saying why."""
    if not isinstance(candidate, str) or not candidate.strip():
        raise InvalidUsername("send login <username>")
    name = candidate.strip()
    if len(name) > max_chars:
        raise InvalidUsername(f"at most {max_chars} characters")
    if not USERNAME_PATTERN.fullmatch(name):
        raise InvalidUsername("use only the letters A-Z, a-z and the digits 0-9")
    if name_key(name) in RESERVED_NAMES:
        raise InvalidUsername(f"{name} is reserved")
    return name
