# Typed input for the line-mode clients (plain and CS3560): a daemon thread reads a text
# stream and queues each line as a TypedLine, then one EndOfInput.
# Rules: the reader never raises (a closed or undecodable stream ends the input); the
# consumer handles the queue on its own thread, in arrival order with server events.
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class TypedLine:
    text: str


@dataclass(frozen=True)
class EndOfInput:
    pass


def _read(stream: TextIO, inbox: queue.Queue[object]) -> None:
    try:
        for line in stream:
            inbox.put(TypedLine(line))
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    inbox.put(EndOfInput())


def start_reading(stream: TextIO, inbox: queue.Queue[object]) -> threading.Thread:
    """Queue `stream`'s lines on `inbox` from a daemon thread (started and returned)."""
    reader = threading.Thread(target=_read, args=(stream, inbox), name="ktnchat-stdin", daemon=True)
    reader.start()
    return reader
