#!/usr/bin/env python3
"""Run `ktnchat server` with memory introspection: each SIGUSR1 writes what the process holds.

A dump, DIR/dump-N.json, says: resident memory split by mapping (the main heap, anonymous
mappings such as glibc's thread arenas and pymalloc's, shared libraries), pymalloc's arenas
(allocated, bytes in use, unused pools: from sys._debugmallocstats), how many objects the
cyclic GC tracks and, with --census, which objects only the cyclic GC could free (found
with gc.DEBUG_SAVEALL, counted by type; the census frees them, so it comes last).

Used by `tools/soak.py --memwatch DIR`; by hand:

    python3 tools/memwatch.py --dir /tmp/mem --census -- --port 9998 --log-level WARNING
    kill -USR1 <pid>          # then read /tmp/mem/dump-1.json

Linux only (/proc). A debugging tool: while a dump runs, the process's stderr goes to a
scratch file for a moment (sys._debugmallocstats writes there).
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import re
import signal
import sys
import tempfile
from typing import Any, Dict, List

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def resident_by_mapping() -> Dict[str, int]:
    """Resident KiB per kind of mapping: [heap], [anon], [stack], or a file's base name."""
    kinds: Dict[str, int] = collections.defaultdict(int)
    current = "[anon]"
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if not fields:
                continue
            if re.match(r"^[0-9a-f]+-[0-9a-f]+$", fields[0]):
                name = fields[5] if len(fields) > 5 else "[anon]"
                current = os.path.basename(name) if name.startswith("/") else name
            elif fields[0] == "Rss:":
                kinds[current] += int(fields[1])
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]))


def status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def pymalloc_stats() -> Dict[str, int]:
    """Arenas and pools from sys._debugmallocstats() (which writes to fd 2)."""
    with tempfile.TemporaryFile("w+") as scratch:
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(scratch.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        scratch.seek(0)
        text = scratch.read()

    def number(pattern: str) -> int:
        found = re.search(pattern, text)
        return int(found.group(1).replace(",", "")) if found else -1

    return {
        "arenas": number(r"# arenas allocated current\s*=\s*([\d,]+)"),
        "arenas_highwater": number(r"# arenas highwater mark\s*=\s*([\d,]+)"),
        "bytes_in_use": number(r"# bytes in allocated blocks\s*=\s*([\d,]+)"),
        "unused_pool_bytes": number(r"unused pools \* \d+ bytes\s*=\s*([\d,]+)"),
    }


def cycle_census() -> Dict[str, int]:
    """Objects only the cyclic GC could free, by type (and frees them)."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        counts = collections.Counter(
            f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.collect()  # DEBUG_SAVEALL kept them: now free them for real
    return dict(counts.most_common(20))


def dump(directory: str, number: int, census: bool) -> None:
    report: Dict[str, Any] = {
        "rss_kib": status_kib("VmRSS"),
        "anon_kib": status_kib("RssAnon"),
        "threads": len(os.listdir("/proc/self/task")),
        "by_mapping_kib": resident_by_mapping(),
        "pymalloc": pymalloc_stats(),
        "gc_tracked_objects": len(gc.get_objects()),
    }
    if census:
        report["cycle_garbage"] = cycle_census()
    path = os.path.join(directory, f"dump-{number}.json")
    with open(path + ".part", "w") as out:
        out.write(json.dumps(report))  # json.dump(), pure Python, would leave cycles
    os.replace(path + ".part", path)  # readers never see half a dump


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="where dump-N.json files go")
    parser.add_argument("--census", action="store_true", help="count cyclic garbage by type")
    parser.add_argument("server_args", nargs=argparse.REMAINDER, help="-- then server options")
    args = parser.parse_args(argv)
    os.makedirs(args.dir, exist_ok=True)
    dumps = [0]

    def on_signal(signum: int, frame: object) -> None:
        dumps[0] += 1
        dump(args.dir, dumps[0], args.census)

    signal.signal(signal.SIGUSR1, on_signal)
    sys.path.insert(0, REPO)
    from ktnchat.server.main import main as server_main

    server_args = args.server_args[1:] if args.server_args[:1] == ["--"] else args.server_args
    return server_main(server_args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
