# Text hygiene for what users send and what the server says.
# Rules: message bodies keep newlines and tabs but lose every other control character
# (C0, DEL, C1), so no client's terminal can be driven by another user's message;
# long texts are split on line or comma boundaries into pieces for naive clients.
from __future__ import annotations

import re
from typing import List

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def scrub_controls(text: str) -> str:
    """Replace control characters other than \\n and \\t with U+FFFD."""
    if text.isprintable():  # no control character at all (C0, DEL, C1 are unprintable)
        return text
    return _CONTROL.sub("\ufffd", text)


def split_items(prefix: str, items: List[str], max_chars: int, separator: str = ", ") -> List[str]:
    """Join `items` after `prefix` into pieces of at most ~max_chars characters."""
    pieces: List[str] = []
    current: List[str] = []
    size = len(prefix)
    for item in items:
        if current and size + len(separator) + len(item) > max_chars:
            pieces.append(prefix + separator.join(current))
            current, size = [], len(prefix)
        current.append(item)
        size += len(item) + len(separator)
    pieces.append(prefix + separator.join(current))
    return pieces
