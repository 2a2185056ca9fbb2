# The checker's results and how they are shown: a table for people, JSON for machines.
#
# Rules:
# - A result is PASS, WARN or FAIL. FAIL breaks a rule the seed states; WARN is a
#   robustness problem the seed does not mandate. The exit status is 0 only without FAIL.
# - Every result names the rule it checks (seed edition, seed file, quoted text) and, when
#   not PASS, what was received, as truncated raw bytes (escaped, never interpreted).
# - Rendering never raises and never writes control characters a peer sent to a terminal.
from __future__ import annotations

import enum
import json
import textwrap
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

MAX_RECEIVED_CHARS = 400


class Status(enum.Enum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Rule:
    """The seed requirement a check enforces: edition ("2017"/"2014"), seed file, quote."""

    edition: str
    seed: str
    quote: str

    def cite(self) -> str:
        return f'seed {self.seed} ({self.edition}): "{self.quote}"'


@dataclass
class CheckResult:
    """The outcome of one check."""

    check_id: str
    title: str
    status: Status
    rule: Rule
    detail: str = ""
    received: str = ""
    seconds: float = 0.0
    extra: Dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> Dict[str, Any]:
        return {
            "id": self.check_id,
            "title": self.title,
            "status": self.status.value,
            "edition": self.rule.edition,
            "seed": self.rule.seed,
            "rule": self.rule.quote,
            "detail": self.detail,
            "received": self.received,
            "seconds": round(self.seconds, 3),
            **({"extra": self.extra} if self.extra else {}),
        }


def show_bytes(data: bytes, limit: int = MAX_RECEIVED_CHARS) -> str:
    """Raw bytes as printable text (Python bytes-literal escapes), cut to `limit` chars."""
    text = repr(bytes(data))[2:-1]
    if len(text) > limit:
        return text[:limit] + f"... ({len(data)} bytes in all)"
    return text


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() or ch == "\n" else f"\\x{ord(ch):02x}" for ch in text)


def exit_status(results: Sequence[CheckResult]) -> int:
    """0 when no check FAILed, else 1."""
    return 1 if any(r.status is Status.FAIL for r in results) else 0


def summary(results: Sequence[CheckResult]) -> str:
    counts = {s: sum(1 for r in results if r.status is s) for s in Status}
    return ", ".join(f"{counts[s]} {s.value}" for s in Status)


def render_table(
    title: str,
    results: Sequence[CheckResult],
    *,
    verbose: bool = False,
    width: int = 100,
    notes: Sequence[str] = (),
) -> str:
    """A readable report: one row per check, the rule and what was received under problems;
    `notes` (summary lines) before the count."""
    lines: List[str] = [title, ""]
    id_width = max([len(r.check_id) for r in results] + [8])
    indent = " " * 6
    for result in results:
        row = f"{result.status.value}  {result.check_id.ljust(id_width)}  {result.title}"
        lines.append(_printable(row))
        if result.detail:
            lines.extend(_wrap(result.detail, indent, width))
        if result.status is not Status.PASS or verbose:
            lines.extend(_wrap(result.rule.cite(), indent + "rule: ", width, indent + "      "))
        if result.status is not Status.PASS and result.received:
            lines.extend(_wrap(result.received, indent + "got:  ", width, indent + "      "))
    lines.append("")
    for note in notes:
        lines.extend(_wrap(note, "", width, "  "))
    lines.append(f"{len(results)} checks: {summary(results)}")
    return "\n".join(lines) + "\n"


def _wrap(text: str, first: str, width: int, rest: str = "") -> List[str]:
    text = _printable(text)
    out: List[str] = []
    for i, para in enumerate(text.split("\n")):
        lead = first if i == 0 else (rest or first)
        out.extend(
            textwrap.wrap(
                para,
                width=max(40, width),
                initial_indent=lead,
                subsequent_indent=rest or " " * len(first),
                break_long_words=True,
                break_on_hyphens=False,
            )
            or [lead]
        )
    return out


def render_json(
    kind: str,
    target: str,
    edition: str,
    results: Sequence[CheckResult],
    extra: Optional[Dict[str, Any]] = None,
) -> str:
    """The machine-readable report (one JSON document); `extra` adds top-level keys."""
    document: Dict[str, Any] = {
        "checker": "ktnchat check",
        "kind": kind,
        "target": target,
        "edition": edition,
        "summary": {s.value: sum(1 for r in results if r.status is s) for s in Status},
        "exit_status": exit_status(results),
        "results": [r.as_dict() for r in results],
        **(extra or {}),
    }
    return json.dumps(document, indent=2, ensure_ascii=True) + "\n"
