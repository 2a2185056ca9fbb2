# Runs the server dialogues of scenarios.py against a live server and judges each one.
#
# Rules:
# - Every wait has a deadline; every exception becomes a FAIL with its reason; nothing a
#   server sends (garbage, floods, silence, closed or reset sockets) can hang or crash us.
# - Each scenario uses fresh connections and fresh unique names; scenarios may run in
#   parallel threads (`jobs`), each in its own sockets.
# - We send like a careful student client: one request per segment (TCP_NODELAY), at least
#   `gap` seconds apart on a connection, so naive servers that json.loads(recv()) are not
#   blamed for our pace, and a 5 msg/s flood limit is never reached.
# - We never say `stream on` (ktnchat's extension), so servers that treat streaming clients
#   differently are judged by what naive clients get. Earlier messages at login pass as a
#   history response of a seed shape or replayed as message responses (history.on-login).
# - What arrived is kept as raw bytes per JSON value, capped (MAX_BYTES per connection);
#   reports show it escaped and truncated.
from __future__ import annotations

import json
import random
import socket
import string
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ktnchat.conformance import scenarios as sc
from ktnchat.conformance.report import CheckResult, Status, show_bytes
from ktnchat.protocol.errors import FrameTooLarge
from ktnchat.protocol.framing import FrameSplitter
from ktnchat.protocol.lenient import (
    KIND_HISTORY_ITEM,
    KIND_MESSAGE,
    ChatLine,
    HistoryShape,
    events_from_value,
    history_encoding,
    history_shape_of_session,
)

MAX_BYTES = 16 * 1024 * 1024  # per connection: more is a flood and reading stops
MAX_FRAME = 8 * 1024 * 1024
_ALNUM = string.ascii_lowercase + string.digits
_RANDOM = random.SystemRandom()
GOOD_HISTORY = (HistoryShape.JSON_STRINGS, HistoryShape.OBJECTS)


@dataclass(frozen=True)
class Options:
    """Timing of the dialogues (seconds) and sizes."""

    timeout: float = 3.0  # the longest wait for an expected answer
    quiet: float = 1.0  # how long we watch for something that must NOT arrive
    settle: float = 0.4  # a login's answer is complete after this much silence
    gap: float = 0.15  # the least time between two sends on one connection
    big: int = 70000  # characters in the oversized message
    jobs: int = 1  # scenarios run at once


def unique_name(prefix: str = "k") -> str:
    """A fresh username: letters and digits only (valid in every edition), 10 characters."""
    return prefix + "".join(_RANDOM.choice(_ALNUM) for _ in range(9 - len(prefix) + 1))


def substitute(template: Any, values: Dict[str, str]) -> Any:
    """Replace "{key}" placeholders in every string of a JSON-able template."""
    if isinstance(template, str):
        for key, value in values.items():
            if "{" not in template:
                break
            template = template.replace("{" + key + "}", value)
        return template
    if isinstance(template, list):
        return [substitute(item, values) for item in template]
    if isinstance(template, tuple):
        return tuple(substitute(item, values) for item in template)
    if isinstance(template, dict):
        return {k: substitute(v, values) for k, v in template.items()}
    return template


def placeholder_values(names: Sequence[str], big: int) -> Dict[str, str]:
    values = {who: unique_name() for who in names}
    for i in range(1, 10):
        values[f"t{i}"] = "tok" + "".join(_RANDOM.choice(_ALNUM) for _ in range(10))
    values["big"] = values["t1"] + "x" * max(0, big - len(values["t1"]))
    values["time"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return values


# --- matching ------------------------------------------------------------------------------

_MISSING = object()


def matches(value: Any, match: sc.Match, values: Dict[str, str]) -> bool:
    """Does one received JSON value satisfy `match` (with placeholders substituted)?"""
    if not isinstance(value, dict):
        return False
    for key, expected in match.fields:
        if value.get(key, _MISSING) != substitute(expected, values):
            return False
    for key, unwanted in match.not_fields:
        if value.get(key, _MISSING) == substitute(unwanted, values):
            return False
    if any(key not in value for key in match.has):
        return False
    if any(key in value for key in match.lacks):
        return False
    if any(not isinstance(value.get(key), str) for key in match.string_of):
        return False
    if match.text:
        text = _text_of(value)
        if not all(substitute(t, values) in text for t in match.text):
            return False
    return not match.any_of or any(matches(value, alt, values) for alt in match.any_of)


def _text_of(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return repr(value)


# --- one connection ------------------------------------------------------------------------


@dataclass
class Item:
    """One JSON value (or unparsable frame) received, with its raw bytes."""

    raw: bytes
    value: Any
    parsed: bool


class StepFailed(Exception):
    def __init__(self, reason: str, received: str = "", level: Optional[Status] = None):
        super().__init__(reason)
        self.reason = reason
        self.received = received
        self.level = level


class Conn:
    """A client connection to the server under test, read with deadlines only."""

    def __init__(self, address: Tuple[str, int], options: Options) -> None:
        self.options = options
        try:
            self.sock = socket.create_connection(address, timeout=options.timeout)
        except OSError as exc:
            raise StepFailed(f"cannot connect to {address[0]}:{address[1]}: {exc}") from None
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.splitter = FrameSplitter(MAX_FRAME, 64)
        self.items: List[Item] = []
        self.cursor = 0
        self.eof: Optional[str] = None
        self.total = 0
        self.last_send = 0.0
        self.tail = b""  # bytes of an incomplete frame, for reports
        self.last_match: Optional[Item] = None

    def send(self, data: bytes) -> None:
        wait = self.last_send + self.options.gap - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # pacing, not synchronisation
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise StepFailed(
                f"the server closed the connection ({exc}) before we could send", self.shown(0)
            ) from None
        self.last_send = time.monotonic()

    def pump(self, deadline: float) -> bool:
        """Read once, waiting until `deadline` at most; False on timeout or end of stream."""
        if self.eof is not None:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            self.sock.settimeout(min(remaining, 5.0))
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except OSError as exc:
            self.eof = f"connection error: {exc}"
            return False
        if not data:
            self.eof = "the server closed the connection"
            return False
        self.total += len(data)
        if self.total > MAX_BYTES:
            self.eof = f"the server sent more than {MAX_BYTES} bytes (flood); stopped reading"
            return False
        self.splitter.feed(data)
        try:
            while True:
                frame = self.splitter.next_frame()
                if frame is None:
                    break
                self.items.append(_item(frame.data))
        except FrameTooLarge:
            self.eof = f"the server sent one value larger than {MAX_FRAME} bytes"
            return False
        self.tail = data[-200:] if self.splitter.buffered else b""
        return True

    def next_matching(self, predicate: Callable[[Any], bool], deadline: float) -> Optional[Item]:
        """The next unread item satisfying `predicate` (others are skipped), or None."""
        while True:
            while self.cursor < len(self.items):
                item = self.items[self.cursor]
                self.cursor += 1
                if item.parsed and predicate(item.value):
                    return item
            if not self.pump(deadline) and (time.monotonic() >= deadline or self.eof is not None):
                return None

    def collect_until_quiet(self, quiet: float, limit: float) -> List[Item]:
        """Unread items arriving until `quiet` seconds pass with nothing new (or `limit`)."""
        start = self.cursor
        deadline = time.monotonic() + limit
        while True:
            quiet_until = min(deadline, time.monotonic() + quiet)
            got = False
            while time.monotonic() < quiet_until:
                if self.pump(quiet_until):
                    got = True
                    break
                if self.eof is not None:
                    break
            if not got or time.monotonic() >= deadline:
                break
        self.cursor = len(self.items)
        return self.items[start:]

    def shown(self, start: int) -> str:
        """What arrived since item `start`, as escaped raw bytes, plus the stream's state."""
        data = b"".join(item.raw for item in self.items[start:]) + self.tail
        text = show_bytes(data) if data else "nothing"
        if self.eof is not None:
            text += f" [{self.eof}]"
        return text

    def abort(self) -> None:
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
        except OSError:
            pass
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _item(data: bytes) -> Item:
    try:
        return Item(data, json.loads(data.decode("utf-8", errors="replace")), True)
    except (ValueError, RecursionError):
        return Item(data, None, False)


# --- running one scenario ------------------------------------------------------------------


class Runner:
    """Executes one scenario's steps; raises StepFailed on the first failing step."""

    def __init__(self, scenario: sc.Scenario, address: Tuple[str, int], options: Options):
        self.scenario = scenario
        self.address = address
        self.options = options
        self.values = placeholder_values(scenario.names, options.big)
        self.conns: Dict[str, Conn] = {}
        self.detail = ""

    def conn(self, who: str) -> Conn:
        if who not in self.conns:
            raise StepFailed(f"scenario error: {who} is not connected")
        return self.conns[who]

    def run(self) -> None:
        try:
            for step in self.scenario.steps:
                self.step(step)
        finally:
            for conn in self.conns.values():
                conn.close()

    def step(self, step: sc.Step) -> None:
        o = self.options
        if isinstance(step, sc.Connect):
            if step.who in self.conns:
                self.conns[step.who].close()
            self.conns[step.who] = Conn(self.address, o)
        elif isinstance(step, sc.Send):
            value = substitute(step.value, self.values)
            self.conn(step.who).send(json.dumps(value).encode("utf-8"))
        elif isinstance(step, sc.SendRaw):
            conn = self.conn(step.who)
            for i, part in enumerate(step.parts):
                if i:
                    time.sleep(step.gap)  # separate TCP segments: deliberate, bounded
                conn.send(substitute(part, self.values).encode("utf-8"))
        elif isinstance(step, sc.Login):
            self.login(step.who, step.name or step.who)
        elif isinstance(step, sc.LoginEventually):
            self.login_eventually(step)
        elif isinstance(step, sc.Expect):
            self.expect(step)
        elif isinstance(step, sc.ExpectNot):
            conn = self.conn(step.who)
            start = conn.cursor
            item = conn.next_matching(
                lambda v: matches(v, step.match, self.values), time.monotonic() + o.quiet
            )
            if item is not None:
                raise StepFailed(f"{step.what}, but it arrived", show_bytes(item.raw), step.level)
            conn.cursor = start
        elif isinstance(step, sc.ExpectHistory):
            self.expect_history(step)
        elif isinstance(step, sc.CheckAll):
            self.check_all(step)
        elif isinstance(step, sc.Close):
            self.conn(step.who).close()
        elif isinstance(step, sc.Abort):
            self.conn(step.who).abort()

    def expect(self, step: sc.Expect) -> None:
        conn = self.conn(step.who)
        if step.same:
            last = conn.last_match
            if last is None or not matches(last.value, step.match, self.values):
                got = show_bytes(last.raw) if last is not None else "nothing"
                raise StepFailed(f"expected {self.render(step.what)}", got, step.level)
            return
        start = conn.cursor
        item = conn.next_matching(
            lambda v: matches(v, step.match, self.values),
            time.monotonic() + self.options.timeout,
        )
        if item is not None or (step.eof_ok and conn.eof is not None):
            conn.last_match = item
            return
        state = "the connection ended" if conn.eof else f"none within {self.options.timeout} s"
        raise StepFailed(
            f"expected {self.render(step.what)}; {state}", conn.shown(start), step.level
        )

    def render(self, text: str) -> str:
        return str(substitute(text, {k: v for k, v in self.values.items() if k != "big"}))

    def send_login(self, conn: Conn, name: str) -> None:
        request = sc.login_request(self.scenario.edition, self.values[name])
        conn.send(json.dumps(request).encode("utf-8"))

    def login(self, who: str, name: str) -> None:
        """Log in and wait for the answer to settle; fail if refused or unanswered."""
        conn = self.conn(who)
        start = conn.cursor
        self.send_login(conn, name)
        items = self.await_answer(conn)
        refused = sc.login_refused(self.scenario.edition)
        accepted = sc.login_accepted(self.scenario.edition)
        if any(i.parsed and matches(i.value, refused, self.values) for i in items):
            raise StepFailed(f"login as {self.values[name]} was refused", conn.shown(start))
        if not any(i.parsed and matches(i.value, accepted, self.values) for i in items):
            state = "the connection ended" if conn.eof else "no answer"
            raise StepFailed(f"login as {self.values[name]}: {state}", conn.shown(start))

    def await_answer(self, conn: Conn) -> List[Item]:
        """Items answering a request: the first within the timeout, then until quiet."""
        start = conn.cursor
        deadline = time.monotonic() + self.options.timeout
        while len(conn.items) == start and conn.pump(deadline):
            pass
        if len(conn.items) == start:
            return []
        conn.collect_until_quiet(self.options.settle, self.options.timeout)
        return conn.items[start:]

    def login_eventually(self, step: sc.LoginEventually) -> None:
        deadline = time.monotonic() + 2 * self.options.timeout
        start = self.conn(step.who).cursor
        refused = sc.login_refused(self.scenario.edition)
        while True:
            conn = self.conn(step.who)
            if conn.eof is not None:
                self.conns[step.who] = conn = Conn(self.address, self.options)
                start = 0
            self.send_login(conn, step.name)
            items = self.await_answer(conn)
            if items and not any(
                i.parsed and matches(i.value, refused, self.values) for i in items
            ):
                return
            if time.monotonic() + 0.5 >= deadline:
                raise StepFailed(
                    f"expected {step.what} (name {self.values[step.name]}); refused or "
                    f"unanswered for {2 * self.options.timeout:.1f} s",
                    conn.shown(start),
                    step.level,
                )
            time.sleep(0.5)  # retry pacing while the server notices the lost client

    def expect_history(self, step: sc.ExpectHistory) -> None:
        """The earlier messages after a login: in a history response of a seed shape, or
        replayed as message responses (their sender and content as sent). We never say
        `stream on`, so this is what a naive client gets."""
        conn = self.conn(step.who)
        start = conn.cursor
        sent = [(str(substitute(t, self.values)), str(substitute(who, self.values)))
                for t, who in step.messages]  # fmt: skip
        tokens = [token for token, _ in sent]
        deadline = time.monotonic() + self.options.timeout
        while not _holds_tokens(conn.items[start:], tokens) and conn.pump(deadline):
            pass
        if _holds_tokens(conn.items[start:], tokens):
            conn.collect_until_quiet(self.options.settle, self.options.timeout)
        values = [i.value for i in conn.items[start:] if i.parsed]
        conn.cursor = len(conn.items)
        shape = history_shape_of_session(values)
        in_history = [t for t in tokens if _in_history(values, t)]
        replayed = [t for t, sender in sent if _replayed(values, t, sender)]
        if _carries_history(shape) and len(in_history) == len(tokens):
            if shape not in GOOD_HISTORY:
                raise StepFailed(
                    f"history sent as {shape.value}: content must be a list of message "
                    "objects (or of their JSON texts)",
                    conn.shown(start),
                )
            self.detail = f"history encoding: {shape.value}"
        elif len(replayed) == len(tokens):
            self.detail = (
                f"history delivery: the {len(tokens)} earlier messages replayed as message "
                "responses"
            )
        else:
            problem = _history_problem(shape, tokens, in_history, replayed, values)
            raise StepFailed(problem, conn.shown(start))

    def check_all(self, step: sc.CheckAll) -> None:
        conn = self.conn(step.who)
        conn.collect_until_quiet(min(self.options.settle, 0.2), self.options.timeout)
        for item in conn.items:
            problem = _timestamp_problem(item) if step.check == "timestamps" else None
            if step.check == "envelope":
                problem = _envelope_problem(item)
            if problem:
                raise StepFailed(problem, show_bytes(item.raw))


def _holds_tokens(items: Sequence[Item], tokens: Sequence[str]) -> bool:
    """Does every token occur in a message or history entry of these items?"""
    texts = [
        event.text
        for item in items
        if item.parsed
        for event in events_from_value(item.value)
        if isinstance(event, ChatLine) and event.kind in (KIND_HISTORY_ITEM, KIND_MESSAGE)
    ]
    return all(any(token in text for text in texts) for token in tokens)


def _carries_history(shape: HistoryShape) -> bool:
    """Did a response carrying history (history, or an info list) arrive?"""
    return shape not in (HistoryShape.ABSENT, HistoryShape.HEADER_THEN_MESSAGES)


def _in_history(values: Sequence[Any], token: str) -> bool:
    """Is `token` in an entry of a response carrying history (history, info list)?"""
    for value in values:
        if history_encoding(value) is None:
            continue
        for event in events_from_value(value):
            if (
                isinstance(event, ChatLine)
                and event.kind == KIND_HISTORY_ITEM
                and token in event.text
            ):
                return True
    return False


def _replayed(values: Sequence[Any], token: str, sender: str) -> bool:
    """Did a message response with exactly this content and sender arrive?"""
    return any(
        isinstance(v, dict)
        and v.get("response") == "message"
        and v.get("content") == token
        and v.get("sender") == sender
        for v in values
    )


def _history_problem(
    shape: HistoryShape,
    tokens: Sequence[str],
    in_history: Sequence[str],
    replayed: Sequence[str],
    values: Sequence[Any],
) -> str:
    """Why the earlier messages did not arrive, in words."""
    if _carries_history(shape):
        missing = [t for t in tokens if t not in in_history]
        return f"history ({shape.value}) does not hold the earlier messages {', '.join(missing)}"
    seen = [
        t for t in tokens
        if any(isinstance(v, dict) and v.get("response") == "message"
               and isinstance(v.get("content"), str) and t in v["content"] for v in values)
    ]  # fmt: skip
    if seen:
        missing = [t for t in tokens if t not in replayed]
        return (
            "earlier messages replayed as message responses, but not each with its own "
            f"content and the sender's name: {', '.join(missing)}"
        )
    return (
        "no earlier messages after login: neither a history response nor the earlier "
        "messages replayed as message responses"
    )


KINDS_2017 = ("error", "info", "message", "history")
ENVELOPE_KEYS = ("timestamp", "sender", "response", "content")


def _envelope_problem(item: Item) -> Optional[str]:
    if not item.parsed:
        return "a response that is not JSON"
    value = item.value
    if not isinstance(value, dict):
        return f"a response that is a JSON {type(value).__name__}, not an object"
    missing = [k for k in ENVELOPE_KEYS if k not in value]
    if missing:
        return f"a response without {', '.join(missing)}"
    if value.get("response") not in KINDS_2017:
        return f"a response of kind {value.get('response')!r} (not error/info/message/history)"
    return None


def _timestamp_problem(item: Item) -> Optional[str]:
    value = item.value
    if not item.parsed or not isinstance(value, dict) or "timestamp" not in value:
        return None  # the envelope check reports these
    if not isinstance(value["timestamp"], str):
        return f"a timestamp that is a JSON {_json_type(value['timestamp'])}, not a string"
    if value.get("response") == "history":
        for entry in _history_entries(value.get("content")):
            if "timestamp" in entry and not isinstance(entry["timestamp"], str):
                kind = _json_type(entry["timestamp"])
                return f"a history entry whose timestamp is a JSON {kind}, not a string"
    return None


def _history_entries(content: Any) -> List[Dict[str, Any]]:
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except (ValueError, RecursionError):
            return []
    if not isinstance(content, list):
        return []
    out: List[Dict[str, Any]] = []
    for entry in content[:10000]:
        if isinstance(entry, str):
            try:
                entry = json.loads(entry)
            except (ValueError, RecursionError):
                continue
        if isinstance(entry, dict):
            out.append(entry)
    return out


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def run_scenario(
    scenario: sc.Scenario, address: Tuple[str, int], options: Options = Options()
) -> CheckResult:
    """Run one dialogue; never raises."""
    started = time.monotonic()
    runner = Runner(scenario, address, options)
    status, detail, received = Status.PASS, "", ""
    try:
        runner.run()
        detail = runner.detail
    except StepFailed as failed:
        status = failed.level or scenario.level
        detail, received = runner.render(failed.reason), failed.received
    except Exception as exc:  # a checker must report, never crash
        status = Status.FAIL
        detail = f"checker error: {type(exc).__name__}: {exc}"
    return CheckResult(
        scenario.check_id,
        scenario.title,
        status,
        scenario.rule,
        detail,
        received,
        time.monotonic() - started,
    )


def run_server_checks(
    address: Tuple[str, int],
    edition: str = "2017",
    options: Options = Options(),
    only: Optional[Sequence[str]] = None,
) -> List[CheckResult]:
    """Run every dialogue of `edition` (or those whose id starts with one of `only`)."""
    chosen = [
        s for s in sc.server_scenarios(edition)
        if not only or any(s.check_id.startswith(prefix) for prefix in only)
    ]  # fmt: skip
    if options.jobs <= 1:
        return [run_scenario(s, address, options) for s in chosen]
    with ThreadPoolExecutor(max_workers=options.jobs) as pool:
        return list(pool.map(lambda s: run_scenario(s, address, options), chosen))
