# `ktnchat health [HOST] [PORT] [--timeout S]`: is a KTN chat server answering?
#
# Connects over TCP, sends {"request": "help", "content": null} and exits 0 only if a JSON
# object with "response": "info" comes back within the timeout. Any other outcome (refused,
# timed out, closed, an error response, bytes that are not JSON) prints one line to stderr
# saying what failed and exits 1. Made for container health checks (Docker's HEALTHCHECK
# treats 0 as healthy and 1 as unhealthy), so bad usage exits 1 too, never 2.
#
# Rules:
# - Standard library only (plus the package's own stdlib-only framing), no threads.
# - Bounded: one deadline covers connect, send and every read; at most MAX_READ_BYTES are
#   read; the socket is always closed.
# - Defaults: 127.0.0.1, the port from KTNCHAT_PORT (else 9998), 2.0 seconds.
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from typing import Any, List, NoReturn, Optional

from ktnchat.protocol.errors import FrameTooLarge
from ktnchat.protocol.framing import FrameSplitter

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9998
DEFAULT_TIMEOUT = 2.0
PORT_ENV = "KTNCHAT_PORT"
MAX_READ_BYTES = 256 * 1024  # the help text is a few hundred bytes; stop reading well past it
PROBE = b'{"request": "help", "content": null}'


class HealthError(Exception):
    """The server is not healthy; the message is the one line printed."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"ktnchat health: {message}", file=sys.stderr)
        raise SystemExit(1)


def _port(raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad port {raw!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"bad port {raw!r} (1-65535)")
    return port


def _timeout(raw: str) -> float:
    try:
        seconds = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad timeout {raw!r}") from None
    if not 0 < seconds <= 3600:
        raise argparse.ArgumentTypeError(f"bad timeout {raw!r} (seconds, > 0)")
    return seconds


def _default_port() -> int:
    raw = os.environ.get(PORT_ENV, "")
    if raw == "":
        return DEFAULT_PORT
    try:
        return _port(raw)
    except argparse.ArgumentTypeError as exc:
        raise HealthError(f"{exc} in {PORT_ENV}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ktnchat health",
        description="Exit 0 if a KTN chat server at HOST:PORT answers a help request with an "
        "info response within the timeout; otherwise print what failed and exit 1.",
    )
    parser.add_argument("host", nargs="?", default=DEFAULT_HOST, help=f"default {DEFAULT_HOST}")
    parser.add_argument(
        "port",
        nargs="?",
        type=_port,
        default=None,
        help=f"default ${PORT_ENV}, else {DEFAULT_PORT}",
    )
    parser.add_argument(
        "--timeout",
        type=_timeout,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds for the whole check (default {DEFAULT_TIMEOUT})",
    )
    return parser


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def check(host: str, port: int, timeout: float) -> float:
    """Probe the server; returns the seconds it took, raises HealthError saying what failed."""
    where = _where(host, port)
    started = time.monotonic()
    deadline = started + timeout

    def remaining(doing: str) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise HealthError(f"{where} {doing} within {timeout:g}s")
        return left

    try:
        sock = socket.create_connection((host, port), timeout=remaining("did not accept"))
    except socket.timeout:
        raise HealthError(f"{where} did not accept a connection within {timeout:g}s") from None
    except OSError as exc:
        raise HealthError(f"cannot connect to {where}: {_describe(exc)}") from None
    with sock:
        splitter = FrameSplitter(max_frame_bytes=MAX_READ_BYTES)
        received = 0
        try:
            sock.settimeout(remaining("did not take the request"))
            sock.sendall(PROBE)
            while True:
                sock.settimeout(remaining("sent no info response"))
                data = sock.recv(16384)
                if not data:
                    raise HealthError(f"{where} closed the connection without an info response")
                received += len(data)
                splitter.feed(data)
                frame = splitter.next_frame()
                if frame is not None:  # only the first object counts
                    _judge(where, frame.data)
                    return time.monotonic() - started
                if received > MAX_READ_BYTES:
                    raise HealthError(f"{where} sent {received} bytes without a complete object")
        except socket.timeout:
            raise HealthError(f"{where} sent no info response within {timeout:g}s") from None
        except FrameTooLarge:
            raise HealthError(f"{where} sent an object over {MAX_READ_BYTES} bytes") from None
        except OSError as exc:
            raise HealthError(f"connection to {where} failed: {_describe(exc)}") from None


def _judge(where: str, data: bytes) -> None:
    """Accept the first object the server sends if it is an info response."""
    try:
        value: Any = json.loads(data.decode("utf-8", errors="replace"))
    except ValueError:
        raise HealthError(f"{where} sent something that is not JSON: {_clip(data)}") from None
    if not isinstance(value, dict):
        raise HealthError(f"{where} sent JSON that is not an object: {_clip(data)}")
    kind = value.get("response")
    if kind != "info":
        content = value.get("content")
        raise HealthError(f"{where} answered {kind!r} instead of 'info': {_clip(content)}")


def _clip(value: object, limit: int = 120) -> str:
    text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        port = args.port if args.port is not None else _default_port()
        took = check(args.host, port, args.timeout)
    except HealthError as exc:
        print(f"ktnchat health: {exc}", file=sys.stderr)
        return 1
    print(f"ktnchat health: ok ({_where(args.host, port)} answered in {took * 1000:.0f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
