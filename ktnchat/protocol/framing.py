# Splits a TCP byte stream into JSON values ("frames"), with no socket and no JSON parsing.
#
# Rules:
# - A frame is one top-level JSON value: an object or array (matched brackets, strings
#   respected), a string, or a bare token (number, literal or garbage) ended by whitespace
#   or the start of the next value. Whitespace and NUL bytes between frames are skipped,
#   so `{..}{..}`, `{..}\n{..}` and `{..}\r\n` all work, split at any byte.
# - Scanning is incremental: feeding a frame one byte at a time costs O(frame), not O(frame^2).
# - UTF-8 multi-byte sequences never contain ASCII bytes, so scanning bytes is safe.
# - A frame longer than `max_frame_bytes` raises FrameTooLarge (fatal: the stream cannot be
#   trusted after it). Nesting deeper than `max_depth` is reported on that frame alone
#   (`Frame.too_deep`), so the stream stays usable.
# - Mismatched brackets are not this module's business: the frame is cut where the depth
#   returns to zero and json parsing reports the error.
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from ktnchat.protocol.errors import FrameTooLarge

_STRUCTURAL = re.compile(rb'[{}\[\]"]')
_IN_STRING = re.compile(rb'["\\]')
_BARE_TOKEN_END = re.compile(rb'[\s\x00{}\[\]"]')
_SEPARATORS = b" \t\r\n\x00"

DEFAULT_MAX_FRAME_BYTES = 512 * 1024
DEFAULT_MAX_DEPTH = 32


@dataclass(frozen=True)
class Frame:
    """One complete top-level JSON value as raw bytes."""

    data: bytes
    too_deep: bool = False


# Scanner states between calls.
_IDLE, _CONTAINER, _STRING, _BARE = range(4)


class FrameSplitter:
    """Incremental splitter: `feed(bytes)`, then call `next_frame()` until it returns None."""

    def __init__(
        self,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.max_frame_bytes = max_frame_bytes
        self.max_depth = max_depth
        self._buf = bytearray()
        self._start = 0  # start of the current frame in _buf
        self._pos = 0  # next byte to scan
        self._state = _IDLE
        self._depth = 0
        self._deepest = 0
        self._in_string = False  # inside a string within a container

    @property
    def buffered(self) -> int:
        """Bytes held that are not yet part of a returned frame."""
        return len(self._buf) - self._start

    @property
    def idle(self) -> bool:
        """True when no partial frame is buffered (only separators, if anything)."""
        return self._state == _IDLE and not self._buf[self._start :].strip(_SEPARATORS)

    def feed(self, data: bytes) -> None:
        """Append received bytes. An empty `data` is allowed and does nothing."""
        if data:
            self._compact()  # drop consumed frames so the buffer never outgrows one frame
            self._buf += data

    def next_frame(self) -> Optional[Frame]:
        """Return the next complete frame, or None if more bytes are needed.

        Raises:
            FrameTooLarge: the current frame exceeds `max_frame_bytes`.
        """
        buf = self._buf
        end = len(buf)
        if self._state == _IDLE:
            start = self._start
            while start < end and buf[start] in _SEPARATORS:
                start += 1
            self._start = start
            if start >= end:
                self._compact()
                return None
            first = buf[start]
            self._pos = start + 1
            if first in b"{[":
                self._state = _CONTAINER
                self._depth = self._deepest = 1
                self._in_string = False
            elif first == 0x22:  # '"'
                self._state = _STRING
            else:
                self._state = _BARE
        frame_end = self._scan(end)
        if frame_end is None:
            if end - self._start > self.max_frame_bytes:
                raise FrameTooLarge(self.max_frame_bytes)
            return None
        if frame_end - self._start > self.max_frame_bytes:
            raise FrameTooLarge(self.max_frame_bytes)
        frame = Frame(bytes(buf[self._start : frame_end]), self._deepest > self.max_depth)
        self._start = frame_end
        self._state = _IDLE
        if self._start >= end:
            self._compact()
        return frame

    def _scan(self, end: int) -> Optional[int]:
        """Advance the scan; return the frame's end index once it is complete."""
        buf = self._buf
        if self._state == _BARE:
            match = _BARE_TOKEN_END.search(buf, self._pos)
            if match is None:
                self._pos = end
                return None
            return match.start()
        if self._state == _STRING:
            return self._scan_string(end)
        pos = self._pos
        depth = self._depth
        while True:
            if self._in_string:
                closed = self._skip_string(pos, end)
                if closed is None:
                    self._depth = depth
                    return None
                pos = closed
                self._in_string = False
            match = _STRUCTURAL.search(buf, pos)
            if match is None:
                self._pos = end
                self._depth = depth
                return None
            char = buf[match.start()]
            pos = match.end()
            if char == 0x22:
                self._in_string = True
                self._pos = pos
            elif char in b"{[":
                depth += 1
                if depth > self._deepest:
                    self._deepest = depth
            else:
                depth -= 1
                if depth == 0:
                    self._depth = 0
                    return pos

    def _scan_string(self, end: int) -> Optional[int]:
        return self._skip_string(self._pos, end)

    def _skip_string(self, pos: int, end: int) -> Optional[int]:
        """Scan a string body from `pos`; return the index after its closing quote."""
        buf = self._buf
        while True:
            match = _IN_STRING.search(buf, pos)
            if match is None:
                self._pos = end
                return None
            if buf[match.start()] == 0x5C:  # backslash escapes the next byte
                if match.end() >= end:
                    self._pos = match.start()
                    return None
                pos = match.end() + 1
                continue
            self._pos = match.end()
            return match.end()

    def _compact(self) -> None:
        if self._start:
            del self._buf[: self._start]
            self._pos = max(0, self._pos - self._start)
            self._start = 0
