# Returning freed memory to the OS: the trimmer really releases pages (glibc), and the
# server's maintenance thread calls it on its interval, and can be told not to.
from __future__ import annotations

import platform
import sys
import time

import pytest

from ktnchat.server.heap import HeapTrimmer
from ktnchat.server.main import build_parser, configs_from_args
from tests.helpers import start_server

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")


def resident_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


@needs_glibc
def test_trim_gives_back_holes_the_allocator_kept() -> None:
    # 64 KiB blocks sit below glibc's mmap threshold, so they come from an arena. Freeing
    # every other one leaves holes that cannot merge into the arena's top: glibc keeps
    # them resident until someone asks for malloc_trim.
    block = 64 * 1024
    count = 400  # 25 MiB freed in holes
    blocks = [b"x" * block for _ in range(2 * count)]
    kept = blocks[1::2]
    del blocks
    before = resident_kib()
    trimmer = HeapTrimmer()
    assert trimmer.available
    trimmer.trim()
    after = resident_kib()
    assert trimmer.trims == 1
    assert before - after >= count * block // 1024 // 2, (before, after)
    assert len(kept) == count


def test_trim_is_a_harmless_no_op_where_unavailable() -> None:
    trimmer = HeapTrimmer()
    trimmer._malloc_trim = None
    assert trimmer.trim() is False
    assert trimmer.trims == 0


@needs_glibc
def test_the_server_trims_on_its_interval() -> None:
    server = start_server(heap_trim_interval=0.02)
    try:
        deadline = time.monotonic() + 5.0
        while server.heap.trims < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.heap.trims >= 3
    finally:
        server.shutdown()


@needs_glibc
def test_an_interval_of_zero_never_trims() -> None:
    # Retention runs on the same maintenance thread: once it has run several times, a
    # trim due on any interval would have happened too.
    server = start_server(heap_trim_interval=0.0, maintenance_interval=0.01)
    runs = []
    original = server.service.apply_retention
    server.service.apply_retention = lambda: (runs.append(1), original())[1]  # type: ignore
    try:
        deadline = time.monotonic() + 5.0
        while len(runs) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(runs) >= 5
        assert server.heap.trims == 0
    finally:
        server.shutdown()


def test_the_interval_is_an_option_and_an_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server_config, _ = configs_from_args(build_parser().parse_args(["--heap-trim-interval", "2.5"]))
    assert server_config.heap_trim_interval == 2.5
    monkeypatch.setenv("KTNCHAT_HEAP_TRIM_INTERVAL", "0")
    server_config, _ = configs_from_args(build_parser().parse_args([]))
    assert server_config.heap_trim_interval == 0.0
