# Server-to-client WebSocket frames, built once and shared by every recipient.
# Rules: server frames are never masked (RFC 6455 5.1), and the listener negotiates no
# extension, so one text message has one byte form whoever receives it: a broadcast is
# framed once, like its JSON is encoded once. Standard library only.
from __future__ import annotations

import struct


def ws_text_frame(json_line: bytes) -> bytes:
    """One final text frame carrying `json_line` (a newline at its end is dropped)."""
    payload = json_line[:-1] if json_line.endswith(b"\n") else json_line
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload
