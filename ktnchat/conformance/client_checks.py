# Runs the client checks of scenarios.py: a scripted fake server on a loopback port, the
# client under test in a pseudo-terminal, commands typed into it, its requests and its
# terminal output judged.
#
# Rules:
# - Each check is independent: a fresh FakeServer and a fresh client process (its own
#   session and process group, so we stop exactly what we started: SIGTERM, then SIGKILL).
# - The pty does not echo (ECHO off), and the tokens we look for in the output are only
#   ever sent by the fake server, never typed, so typed text cannot fake a pass.
# - Output is judged after removing terminal escape sequences and carriage returns.
# - A request's extra keys WARN, except ktnchat's own "stream": "on"/"off" (a framing
#   extension that servers reading only request and content ignore): noted on the PASS.
# - Every wait has a deadline (cut short when the client exits); every exception becomes a
#   FAIL with its reason.
# - A history-shape check (history_shapes.py) records whether the client survived its shape
#   (result.extra["survived"]: the live message after it shown, the process still running).
from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import termios
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from ktnchat.conformance import history_shapes as hs
from ktnchat.conformance import scenarios as sc
from ktnchat.conformance.fakeserver import FakeServer, Frame
from ktnchat.conformance.report import CheckResult, Status, show_bytes
from ktnchat.conformance.server_checks import StepFailed, placeholder_values, substitute
from ktnchat.protocol.codec import stream_choice
from ktnchat.protocol.events import STREAM_KEY

INPUT_STYLES: Dict[str, Dict[str, str]] = {
    # `login alice`, `msg hi`: the seed's own command words (2017 edition).
    "commands": {
        "login": "login {name}",
        "msg": "msg {text}",
        "names": "names",
        "help": "help",
        "logout": "logout",
    },
    # The first line is the username; afterwards every line is a message.
    "username-first": {
        "login": "{name}",
        "msg": "{text}",
        "names": "names",
        "help": "help",
        "logout": "logout",
    },
    # IRC style: /login alice, plain text is a message.
    "slash": {
        "login": "/login {name}",
        "msg": "{text}",
        "names": "/names",
        "help": "/help",
        "logout": "/logout",
    },
}
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]")
MAX_OUTPUT = 4 * 1024 * 1024
TAIL_CHARS = 400


@dataclass(frozen=True)
class ClientOptions:
    """How to start and drive the client under test."""

    command: Tuple[str, ...]
    style: Dict[str, str] = field(default_factory=lambda: dict(INPUT_STYLES["commands"]))
    append_address: bool = True  # add HOST PORT when the command has no {host}/{port}
    timeout: float = 5.0  # the longest wait for a request or for output
    gap: float = 0.2  # the least time between two responses we send
    jobs: int = 4
    cwd: Optional[str] = None


class ClientProcess:
    """The client under test on a pseudo-terminal; output collected by a thread."""

    def __init__(self, argv: Sequence[str], env: Dict[str, str], cwd: Optional[str]) -> None:
        self.master, slave = pty.openpty()
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~(termios.ECHO | termios.ECHONL)
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        self.output = bytearray()
        self._lock = threading.Lock()
        try:
            self.proc = subprocess.Popen(
                list(argv),
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env=env,
                cwd=cwd,
                start_new_session=True,
                close_fds=True,
            )
        except OSError:
            os.close(slave)
            os.close(self.master)
            raise
        os.close(slave)
        self._reader = threading.Thread(target=self._read, name="client-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                if len(self.output) < MAX_OUTPUT:
                    self.output.extend(data)

    def type_line(self, line: str) -> None:
        try:
            os.write(self.master, line.encode("utf-8") + b"\r")
        except OSError as exc:
            raise StepFailed(f"cannot type into the client: {exc}", self.tail()) from None

    def text(self) -> str:
        with self._lock:
            raw = bytes(self.output)
        return _ESCAPES.sub("", raw.decode("utf-8", errors="replace")).replace("\r", "")

    def tail(self) -> str:
        """The end of the output (escaped; a traceback's last line is what matters)."""
        shown = show_bytes(self.text()[-2000:].encode("utf-8"), limit=1 << 20)
        if len(shown) > TAIL_CHARS:
            shown = "..." + shown[-TAIL_CHARS:]
        state = "" if self.proc.poll() is None else f" [client exited with {self.proc.returncode}]"
        return shown + state

    def wait_output(self, tokens: Sequence[str], deadline: float) -> bool:
        """Wait until the output shows every token; False at the deadline, or soon after
        the client exits (once its last output is read)."""
        exited: Optional[float] = None
        while True:
            text = self.text()
            if all(token in text for token in tokens):
                return True
            now = time.monotonic()
            if exited is None and self.proc.poll() is not None:
                exited = now
            if now >= deadline or (exited is not None and now - exited > 0.3):
                return False
            time.sleep(0.05)  # polling our own buffer, bounded by the deadline

    def stop(self) -> None:
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
                try:
                    os.killpg(self.proc.pid, sig)
                except OSError:
                    pass
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        try:
            os.close(self.master)
        except OSError:
            pass
        self._reader.join(2.0)


def client_argv(options: ClientOptions, host: str, port: int) -> List[str]:
    argv = [a.replace("{host}", host).replace("{port}", str(port)) for a in options.command]
    placed = any("{host}" in a or "{port}" in a for a in options.command)
    if options.append_address and not placed:
        argv += [host, str(port)]
    return argv


class ClientRunner:
    def __init__(self, check: sc.ClientCheck, options: ClientOptions) -> None:
        self.check = check
        self.options = options
        self.values = placeholder_values(("a", "b", "c"), 0)
        self.server = FakeServer(gap=options.gap)
        self.client: Optional[ClientProcess] = None
        self.cursor = 0
        self.survived: Optional[bool] = None  # of the shape, once judged
        self.detail = ""  # a note on a pass

    def run(self) -> None:
        o = self.options
        env = dict(os.environ)
        env.update(KTN_HOST=self.server.host, KTN_PORT=str(self.server.port), TERM="xterm")
        try:
            self.client = ClientProcess(
                client_argv(o, self.server.host, self.server.port), env, o.cwd
            )
        except OSError as exc:
            raise StepFailed(f"cannot start the client: {exc}") from None
        try:
            self.type_action("login", "{a}")
            if not self.wait_connection():
                raise StepFailed(
                    f"setup: the client did not connect within {o.timeout} s", self.client.tail()
                )
            first = self.server.wait_frame(0, time.monotonic() + o.timeout)
            if first is None and self.check.check_id != "request.login":
                raise StepFailed("setup: the client sent no login request", self.client.tail())
            reply = self.check.login_reply or sc.LOGIN_OK
            self.send(reply, self.check.login_mode)
            for step in self.check.steps:
                self.step(step)
        finally:
            self.server.close()
            if self.client is not None:
                self.client.stop()

    def wait_connection(self) -> bool:
        """Accept the client's connection; give up at the timeout or when it exits."""
        assert self.client is not None
        deadline = time.monotonic() + self.options.timeout
        while time.monotonic() < deadline:
            if self.server.wait_connection(min(0.2, deadline - time.monotonic())):
                return True
            if self.client.proc.poll() is not None:
                return self.server.wait_connection(0.05)
        return False

    def send(self, values: Sequence[object], mode: str) -> None:
        try:
            self.server.send_values(substitute(list(values), self.values), mode)
        except OSError as exc:
            assert self.client is not None
            raise StepFailed(
                f"the client closed the connection ({exc})", self.client.tail()
            ) from None

    def type_action(self, action: str, text: str = "") -> None:
        assert self.client is not None
        template = self.options.style.get(action)
        if template is None:
            raise StepFailed(f"the input style has no line for {action!r}")
        line = template.replace("{name}", text).replace("{text}", text)
        self.client.type_line(substitute(line, self.values))

    def step(self, step: sc.ClientStep) -> None:
        assert self.client is not None
        if isinstance(step, sc.Type):
            self.type_action(step.action, step.text)
        elif isinstance(step, sc.Reply):
            self.send(step.values, step.mode)
        elif isinstance(step, sc.ExpectOutput):
            self.expect_output(step)
        elif isinstance(step, sc.ExpectAlive):
            code = self.client.proc.poll()
            if code is not None:
                self.survived = False
                raise StepFailed(
                    f"not survived: expected {step.what}; it exited with status {code}",
                    self.client.tail(),
                )
        elif isinstance(step, sc.ExpectRequest):
            self.expect_request(step)

    def expect_output(self, step: sc.ExpectOutput) -> None:
        assert self.client is not None
        tokens = [substitute(t, self.values) for t in step.tokens]
        shown = self.client.wait_output(tokens, time.monotonic() + self.options.timeout)
        if step.survival:
            self.survived = shown
        if shown:
            return
        missing = [t for t in tokens if t not in self.client.text()]
        code = self.client.proc.poll()
        where = f"within {self.options.timeout} s" if code is None else "before it exited"
        lead = "expected"
        if step.survival:
            lead = "not survived: expected"
        elif self.survived:
            lead = "survived, but expected"
        raise StepFailed(
            f"{lead} {step.what} ({', '.join(missing)}) in the client's output {where}",
            self.client.tail(),
            step.level,
        )

    def expect_request(self, step: sc.ExpectRequest) -> None:
        deadline = time.monotonic() + self.options.timeout
        start = self.cursor
        while True:
            frame = self.server.wait_frame(self.cursor, deadline)
            if frame is None:
                sent = b"".join(f.raw for f in self.server.frames[start:])
                state = f" [{self.server.eof}]" if self.server.eof else ""
                raise StepFailed(
                    f"expected {step.what}; no {step.word!r} request within "
                    f"{self.options.timeout} s",
                    (show_bytes(sent) if sent else "nothing") + state,
                    step.level,
                )
            self.cursor += 1
            word = frame.value.get("request") if isinstance(frame.value, dict) else None
            if isinstance(word, str) and word.strip().lower() == step.word:
                if step.judge:
                    self.judge_request(frame, step)
                return

    def judge_request(self, frame: Frame, step: sc.ExpectRequest) -> None:
        value = frame.value
        assert isinstance(value, dict)
        got = show_bytes(frame.raw)
        expected = substitute(step.content, self.values)
        if value.get("request") != step.word:
            raise StepFailed(f"request word {value.get('request')!r}, not {step.word!r}", got)
        if "content" not in value:
            raise StepFailed("the request has no 'content' key", got)
        if expected is not None and value["content"] != expected:
            raise StepFailed(f"content {value['content']!r}, not {expected!r}", got)
        if expected is None and value["content"] is not None:
            raise StepFailed(
                f"content {value['content']!r} instead of None (null): {sc.C_NONE.cite()}",
                got,
                Status.WARN,
            )
        extra = sorted(set(value) - {"request", "content"})
        unknown = [k for k in extra if k != STREAM_KEY or stream_choice(value[k]) is None]
        if unknown:
            raise StepFailed(f"extra keys {', '.join(map(repr, unknown))}", got, Status.WARN)
        if extra:
            self.detail = (
                f"extra key {STREAM_KEY!r}: ktnchat's framing extension, which servers that "
                "read only 'request' and 'content' ignore"
            )


def run_client_check(check: sc.ClientCheck, options: ClientOptions) -> CheckResult:
    """Run one client check; never raises."""
    started = time.monotonic()
    status, detail, received = Status.PASS, "", ""
    runner: Optional[ClientRunner] = None
    try:
        runner = ClientRunner(check, options)
        runner.run()
        detail = runner.detail
    except StepFailed as failed:
        status = failed.level or check.level
        detail, received = failed.reason, failed.received
    except Exception as exc:  # a checker must report, never crash
        status, detail = Status.FAIL, f"checker error: {type(exc).__name__}: {exc}"
    extra: Dict[str, object] = {}
    if check.shape:
        extra = {"shape": check.shape, "survived": runner.survived if runner else None}
    return CheckResult(
        check.check_id, check.title, status, check.rule, detail, received,
        time.monotonic() - started, extra,
    )  # fmt: skip


def all_client_checks() -> List[sc.ClientCheck]:
    """The request, show and framing checks, then one per history shape."""
    return sc.client_checks() + hs.shape_checks()


def run_client_checks(
    options: ClientOptions, only: Optional[Sequence[str]] = None
) -> List[CheckResult]:
    """Run every client check (or those whose id starts with one of `only`)."""
    chosen = [
        c for c in all_client_checks()
        if not only or any(c.check_id.startswith(prefix) for prefix in only)
    ]  # fmt: skip
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        return list(pool.map(lambda c: run_client_check(c, options), chosen))
