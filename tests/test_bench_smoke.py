# Smoke test of `ktnchat bench` (ktnchat/bench.py): each shape once against a real server
# process it starts, on a tiny room (5 clients, 2 senders x 10 messages), through the
# command line and its JSON output. It checks that every client got every message and that
# the JSON has the figures the performance issue asks for. No timing assertions: figures
# on a shared CI machine say nothing here.
# Rules: loopback only; the benchmark stops its server itself; bounded by --time-limit.
from __future__ import annotations

import json
from pathlib import Path

from ktnchat.bench import main

FIGURES = (
    "deliveries_per_s",
    "latency_p50_ms",
    "latency_p99_ms",
    "connect_login_per_s",
    "rss_per_connection_kib",
    "generator_cpu_s",
    "seconds",
)


def test_every_shape_delivers_every_message(tmp_path: Path) -> None:
    for shape in ("open", "bounded", "paced"):
        out = tmp_path / f"{shape}.json"
        argv = ["--clients", "5", "--senders", "2", "--messages", "10", "--shape", shape]
        argv += ["--window", "4", "--rate", "400", "--runs", "1", "--no-pin"]
        argv += ["--time-limit", "20", "--json", str(out)]
        assert main(argv) == 0, shape
        report = json.loads(out.read_text(encoding="utf-8"))
        assert report["errors"] == [], shape
        assert report["workload"]["shape"] == shape
        (run,) = report["runs"]
        assert run["receivers"] == 5
        assert run["messages"] == 20
        assert run["deliveries"] == run["expected_deliveries"] == 100, shape
        assert run["latency_samples"] > 0
        for figure in FIGURES:
            assert figure in run, (shape, figure)
            assert figure in report["summary"], (shape, figure)
