# Line mode: stdin lines in, one rendered line per event out, for pipes and scripts.
#
# Rules:
# - A daemon thread reads stdin and queues its lines; the main thread handles lines and
#   server events in arrival order, so output never interleaves.
# - Every output line is flushed at once. No colours in line mode.
# - Typed lines are never echoed, so a password (register, password, admin, login NAME
#   PASSWORD) never reaches the output.
# - At EOF of stdin: wait for pending output until nothing arrived for QUIET_SECONDS or
#   DRAIN_SECONDS passed, then close and return (0, unless the connection was lost).
from __future__ import annotations

import queue
import sys
import threading
import time
from typing import Optional, TextIO

from ktnchat.client.render import Rendered
from ktnchat.client.session import ClientSession
from ktnchat.client.typed import EndOfInput, TypedLine, start_reading

QUIET_SECONDS = 0.5
DRAIN_SECONDS = 2.0
_POLL_SECONDS = 0.1


class PlainPrinter:
    """Prints Rendered lines, flushing each; never raises on a closed stream."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def __call__(self, rendered: Rendered) -> None:
        with self._lock:
            try:
                self._stream.write(rendered.text + "\n")
                self._stream.flush()
            except (OSError, ValueError):
                pass


def run_plain(session: ClientSession, stdin: Optional[TextIO] = None) -> int:
    """Run a connected session in line mode until quit, lost connection or end of input."""
    start_reading(stdin or sys.stdin, session.inbox)
    drain_deadline: Optional[float] = None
    eof_at = 0.0
    try:
        while session.exit_code is None:  # ends at quit, lost connection or drained EOF
            if drain_deadline is not None:
                now = time.monotonic()
                quiet_until = max(session.last_received, eof_at) + QUIET_SECONDS
                if now >= drain_deadline or now >= quiet_until:
                    return 0
                timeout = min(drain_deadline, quiet_until) - now
            else:
                timeout = None
            try:
                item = session.inbox.get(timeout=timeout)
            except queue.Empty:
                continue
            if isinstance(item, TypedLine):
                session.handle_line(item.text)
            elif isinstance(item, EndOfInput):
                eof_at = time.monotonic()
                drain_deadline = eof_at + DRAIN_SECONDS
            else:
                session.handle_item(item)
        return session.exit_code
    finally:
        session.stop()
