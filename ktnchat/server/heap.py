# Giving freed heap memory back to the operating system after a crowd has left.
#
# Why: a burst of clients fills outboxes and buffers; when they go, glibc keeps the freed
# memory in its arenas (one per thread that allocated) and the process's resident size stays
# at the high-water mark. `malloc_trim(0)` returns every whole free page of every arena.
# Measured (docs/reliability.md): ~4 MB less resident after 1,000 chaos clients had gone,
# 0.1-3 ms per call.
#
# Rules:
# - glibc only, through ctypes; anywhere else (musl, macOS, Windows) trim() is a no-op that
#   returns False. Never raises.
# - Called from the server's maintenance thread, never from an I/O loop: trimming holds each
#   arena's lock for a moment, and a loop should not wait on that.
# - pymalloc's own arenas (small Python objects) are not glibc's to give back: CPython frees
#   an arena only when every object in it is gone. That part of the high-water mark stays.
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from typing import Callable, Optional

log = logging.getLogger("ktnchat.server.heap")


def _find_malloc_trim() -> Optional[Callable[[int], int]]:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc (musl has no malloc_trim)
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class HeapTrimmer:
    """Ask the C allocator to return free memory to the OS; a no-op where it cannot."""

    def __init__(self) -> None:
        self._malloc_trim = _find_malloc_trim()
        self.trims = 0  # how many times trim() asked the allocator

    @property
    def available(self) -> bool:
        return self._malloc_trim is not None

    def trim(self) -> bool:
        """True if the allocator gave memory back."""
        if self._malloc_trim is None:
            return False
        self.trims += 1
        try:
            return bool(self._malloc_trim(0))
        except Exception:  # a foreign function; never let it stop maintenance
            log.exception("malloc_trim failed; not trying again")
            self._malloc_trim = None
            return False
