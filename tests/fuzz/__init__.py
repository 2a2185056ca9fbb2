# Hostile-input tests: hypothesis properties of the codec, the service and the server.
#
# Two hypothesis profiles, chosen with the environment variable HYPOTHESIS_PROFILE:
# - "ci" (the default): few examples, derandomized (the same examples every run, so CI
#   never flakes on a lucky draw), no example database written into the work tree.
# - "thorough": for manual runs; every test's example budget is multiplied by
#   THOROUGH_FACTOR and the search is random (a new draw every run):
#       HYPOTHESIS_PROFILE=thorough python -m pytest tests/fuzz -p no:cacheprovider --timeout=0
# Tests state their budget with `examples(n)`, which scales with the profile.
from __future__ import annotations

import os
from typing import Any, List

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ktnchat.service.commands import ALIASES, COMMANDS

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
THOROUGH_FACTOR = 50

settings.register_profile(
    "ci",
    max_examples=50,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    max_examples=50 * THOROUGH_FACTOR,
    derandomize=False,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(PROFILE if PROFILE in ("ci", "thorough") else "ci")


def examples(n: int) -> int:
    """A test's example budget under the active profile."""
    return n * THOROUGH_FACTOR if PROFILE == "thorough" else n


# --- shared strategies ----------------------------------------------------------------
# (kept here: this package owns no other helper module)

# Every character, lone UTF-16 surrogates, NUL and control characters included.
any_char = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, blacklist_categories=())
any_text = st.text(any_char, max_size=40)
tricky_text = st.one_of(
    any_text,
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "\ud800",
            "\udfff",
            "a\ud83d",
            "\ufffd",
            "\u00b2",  # superscript two: str.isdigit() but not int()-able
            "\u0663",  # ARABIC-INDIC DIGIT THREE: isdigit() and int()-able
            "1e309",
            "nan",
            "-1",
            "0",
            "999999999999999999999999",
            "\u202e",
            "\n\r\t",
            "None",
            "null",
        ]
    ),
)

# Long strings (up to ~280 KB of UTF-8, or ~840 KB once JSON-escaped as ASCII).
huge_text = st.builds(
    lambda c, n: c * n,
    st.sampled_from(["a", "\u00e9", "\U0001f600", " ", "\\", '"']),
    st.integers(0, 70_000),
)

# JSON scalars as Python values (finite: the strict codec refuses NaN/Infinity).
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=False, allow_infinity=False),
    tricky_text,
)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value: scalars, lists and objects, nested."""
    return st.recursive(
        json_scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=5),
            st.dictionaries(any_text, children, max_size=5),
        ),
        max_leaves=max_leaves,
    )


# Every request word the server knows, its aliases, the 2014 edition's words, and junk.
KNOWN_WORDS: List[str] = sorted({*COMMANDS, *ALIASES, "message", "listUsers", "users"})
request_words = st.one_of(
    st.sampled_from(KNOWN_WORDS),
    st.sampled_from(KNOWN_WORDS).map(lambda w: f"  {w.upper()} "),
    any_text,
)


def nested(depth: int, inner: str = "0") -> str:
    """JSON text of `depth` nested arrays around `inner`."""
    return "[" * depth + inner + "]" * depth
