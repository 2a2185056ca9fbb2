# Text hygiene: control characters other than newline and tab never reach another
# user's terminal, whichever path scrub_controls takes (its printable fast path included).
from __future__ import annotations

import sys

from ktnchat.service.text import _CONTROL, scrub_controls


def test_controls_become_replacement_characters_and_the_rest_stays() -> None:
    assert scrub_controls("a\x1b[31mred\x07\x7f\x9b") == "a\ufffd[31mred\ufffd\ufffd\ufffd"
    assert scrub_controls("two\nlines\tand tab") == "two\nlines\tand tab"
    assert scrub_controls("blåbærsyltetøy \u2028 \U0001f600") == "blåbærsyltetøy \u2028 \U0001f600"


def test_no_code_point_the_fast_path_keeps_is_a_control() -> None:
    kept = [
        c for c in map(chr, range(sys.maxunicode + 1)) if c.isprintable() and _CONTROL.match(c)
    ]
    assert kept == []
    every_control = "".join(chr(c) for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)])
    assert scrub_controls(every_control) == "".join(
        c if c in "\n\t" else "\ufffd" for c in every_control
    )
