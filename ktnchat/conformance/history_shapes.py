# The shapes in which real servers send earlier messages (and one `names` answer), as client
# checks, and the summary line naming the shapes a client survived. No I/O here.
#
# Rules:
# - One check per shape, each with a fresh client: log in, the shape (as the login answer,
#   or as the answer to `names`), then a live `message`. The shape is *survived* when the
#   live message is shown and the client still runs; the check PASSes when, besides, every
#   token the shape carries (history entries, names) is shown.
# - Levels: the seed's own history shapes FAIL: a list of JSON strings (the seed tells
#   clients "each of the elements of the list in 'content' are also a JSON object, so they
#   must be decoded") and the empty list (a seed server's history of an empty chat). Every
#   other shape is some real server's deviation and WARNs: a list of objects (the server
#   section's literal wording, but a client decoding each entry as the hint says dies on
#   it), JSON text, one object over 1 KiB, numeric timestamps, a list as `names` content,
#   and the earlier messages replayed as `message` responses (ktnchat's default).
# - Tokens are only ever sent by the fake server; the live message is always the last.
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ktnchat.conformance import scenarios as sc
from ktnchat.conformance.report import CheckResult, Rule, Status

ENTRY_TOKENS = ("{t1}", "{t2}", "{t3}")
NAME_TOKENS = ("{t4}", "{t5}")
LIVE_TOKEN = "{t9}"
LONG_COUNT = 60
# 2017-03-10 11:34:56 UTC, as time.time() gives it: what servers with numeric timestamps send.
EPOCH = 1489145696.52


@dataclass(frozen=True)
class Shape:
    """One shape: its short name (the summary line), its check id, and what it probes."""

    name: str
    check_id: str
    title: str
    level: Status
    rule: Rule


SHAPES = (
    Shape("objects", "history.objects",
          "history as a list of message objects is survived and shown",
          Status.WARN, sc.R_HISTORY_FORMAT),
    Shape("json-strings", "history.json-strings",
          "history as a list of JSON strings is survived and shown",
          Status.FAIL, sc.C_HISTORY),
    Shape("json-text", "history.json-text",
          "history as the JSON text of the list is survived and shown",
          Status.WARN, sc.R_INTEROP),
    Shape("empty", "history.empty", "an empty history ([]) is survived",
          Status.FAIL, sc.R_HISTORY_FORMAT),
    Shape("long", "history.long",
          f"a history object over 1 KiB ({LONG_COUNT} messages, ~11 kB) is survived and shown",
          Status.WARN, sc.R_INTEROP),
    Shape("numeric-timestamp", "history.numeric-timestamp",
          "numeric timestamps (history, its entries, messages) are survived and shown",
          Status.WARN, sc.R_INTEROP),
    Shape("names-list", "names.list",
          "a names answer whose content is a list is survived and shown",
          Status.WARN, sc.R_INTEROP),
    Shape("messages", "history.messages",
          "earlier messages replayed as message responses are survived and shown",
          Status.WARN, sc.R_INTEROP),
)  # fmt: skip


def _entry(token: str, stamp: Any = "{time}") -> Dict[str, Any]:
    return {"timestamp": stamp, "sender": "{b}", "response": "message", "content": token}


def history_reply(encoding: str, entries: Sequence[Dict[str, Any]], stamp: Any = "{time}") -> Any:
    """A history response holding `entries` in one encoding: objects, json-strings,
    json-text."""
    content: Any
    if encoding == "objects":
        content = list(entries)
    elif encoding == "json-strings":
        content = [json.dumps(e) for e in entries]
    elif encoding == "json-text":
        content = json.dumps(list(entries))
    else:
        raise ValueError(f"unknown history encoding {encoding!r}")
    return {**sc.resp("history", content), "timestamp": stamp}


def _probe(tokens: Tuple[str, ...], what: str, stamp: Any = "{time}") -> Tuple[Any, ...]:
    """The live message after a shape, the client still running, then the shape's tokens."""
    live = {**sc.resp("message", LIVE_TOKEN, "{b}"), "timestamp": stamp}
    steps: Tuple[Any, ...] = (
        sc.Reply((live,)),
        sc.ExpectOutput((LIVE_TOKEN,), "the live message sent after it", survival=True),
        sc.ExpectAlive("the client still running after the live message"),
    )
    if tokens:
        steps += (sc.ExpectOutput(tokens, what),)
    return steps


def _login_then(*values: Any) -> Tuple[Any, ...]:
    return (sc.resp("info", "Login successful"), *values)


def _long_entries() -> List[Dict[str, Any]]:
    filler = [_entry(f"old{i}x{'y' * 60}") for i in range(1, LONG_COUNT - 1)]
    return [_entry("{t2}"), *filler, _entry("{t1}")]


def _check(shape: Shape) -> sc.ClientCheck:
    entries = [_entry(t) for t in ENTRY_TOKENS]
    shown = "the history entries"
    steps: Tuple[Any, ...]
    if shape.name in ("objects", "json-strings", "json-text"):
        login = _login_then(history_reply(shape.name, entries))
        steps = _probe(ENTRY_TOKENS, shown)
    elif shape.name == "empty":
        login = _login_then(sc.resp("history", []))
        steps = _probe((), shown)
    elif shape.name == "long":
        login = _login_then(history_reply("json-strings", _long_entries()))
        steps = _probe(("{t1}", "{t2}"), "the first and the last history entry")
    elif shape.name == "numeric-timestamp":
        numbered = [_entry(t, EPOCH) for t in ENTRY_TOKENS]
        info = {**sc.resp("info", "Login successful"), "timestamp": EPOCH}
        login = (info, history_reply("json-strings", numbered, EPOCH))
        steps = _probe(ENTRY_TOKENS, shown, EPOCH)
    elif shape.name == "names-list":
        login = sc.LOGIN_OK
        steps = (
            sc.Type("names"),
            sc.ExpectRequest("names", None, "a names request", judge=False),
            sc.Reply((sc.resp("info", ["{a}", *NAME_TOKENS]),)),
            *_probe(NAME_TOKENS, "the names in the list"),
        )
    elif shape.name == "messages":
        replayed = [
            sc.resp("message", token, "{b}", id=i, history=True)
            for i, token in enumerate(ENTRY_TOKENS, 1)
        ]
        login = _login_then(*replayed)
        steps = _probe(ENTRY_TOKENS, "the earlier messages")
    else:
        raise ValueError(f"unknown history shape {shape.name!r}")
    return sc.ClientCheck(
        shape.check_id, shape.title, shape.level, shape.rule, steps,
        login_reply=login, shape=shape.name,
    )  # fmt: skip


def shape_checks() -> List[sc.ClientCheck]:
    """One client check per shape, in SHAPES order."""
    return [_check(shape) for shape in SHAPES]


def survival(results: Sequence[CheckResult]) -> Dict[str, List[str]]:
    """The shapes (by name) a client survived and showed, survived without showing all
    they carry, died on, or could not be judged on (the dialogue failed before the shape)."""
    out: Dict[str, List[str]] = {"shown": [], "not_shown": [], "died": [], "not_judged": []}
    by_id = {r.check_id: r for r in results}
    for shape in SHAPES:
        result = by_id.get(shape.check_id)
        if result is None:
            continue
        survived = result.extra.get("survived")
        if survived is None:
            out["not_judged"].append(shape.name)
        elif not survived:
            out["died"].append(shape.name)
        else:
            out["shown" if result.status is Status.PASS else "not_shown"].append(shape.name)
    return out


def survival_summary(results: Sequence[CheckResult]) -> Optional[str]:
    """One line naming the shapes survived (None when no shape was checked)."""
    groups = survival(results)
    total = sum(len(names) for names in groups.values())
    if not total:
        return None
    survived = groups["shown"] + [f"{name} (not shown)" for name in groups["not_shown"]]
    parts = [f"history shapes survived: {len(survived)} of {total}"]
    if survived:
        parts[0] += f" ({', '.join(survived)})"
    if groups["died"]:
        parts.append(f"died on: {', '.join(groups['died'])}")
    if groups["not_judged"]:
        parts.append(f"not judged: {', '.join(groups['not_judged'])}")
    return "; ".join(parts)
