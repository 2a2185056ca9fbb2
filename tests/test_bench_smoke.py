# Smoke test of `ktnchat bench` (ktnchat/bench.py): each shape once against a real server
# process it starts, on a tiny room (5 clients, 2 senders x 10 messages), through the
# command line and its JSON output. It checks that every client got every message and that
# the JSON has the figures the performance issue asks for. No timing assertions: figures
# on a shared CI machine say nothing here.
# `--transport ws` the same way over the server's WebSocket listener (a bounded and an
# idle run), and its frame counter fed one stream cut at every place a read can cut it.
# Rules: loopback only; the benchmark stops its server itself; bounded by --time-limit.
from __future__ import annotations

import asyncio
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ktnchat.bench import Run, WebClient, Workload, main
from ktnchat.web.frames import ws_text_frame

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
        # Issue 17's count: each of the 20 lines reached the 4 clients other than its sender.
        assert run["deliveries_to_others"] == 80, shape
        assert run["latency_samples"] > 0
        for figure in FIGURES:
            assert figure in run, (shape, figure)
            assert figure in report["summary"], (shape, figure)


def test_websocket_transport_delivers_every_message(tmp_path: Path) -> None:
    pytest.importorskip("wsproto", reason="wsproto is not installed (pip install '.[web]')")
    pytest.importorskip("h11", reason="h11 is not installed (pip install '.[web]')")
    out = tmp_path / "ws.json"
    argv = ["--transport", "ws", "--clients", "5", "--senders", "2", "--messages", "10"]
    argv += ["--window", "4", "--runs", "1", "--no-pin", "--time-limit", "20", "--json", str(out)]
    assert main(argv) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["errors"] == []
    assert report["workload"]["transport"] == "ws"
    assert "WebSocket" in report["description"]
    (run,) = report["runs"]
    assert run["receivers"] == 5
    assert run["messages"] == 20
    assert run["deliveries"] == run["expected_deliveries"] == 100
    assert run["latency_samples"] > 0
    for figure in FIGURES:
        assert figure in run, figure

    idle = tmp_path / "ws-idle.json"
    argv = ["--transport", "ws", "--shape", "idle", "--clients", "20", "--runs", "1"]
    argv += ["--no-pin", "--time-limit", "20", "--json", str(idle)]
    assert main(argv) == 0
    report = json.loads(idle.read_text(encoding="utf-8"))
    assert report["errors"] == []
    (run,) = report["runs"]
    assert "rss_per_connection_kib" in run
    assert run["connect_login_per_s"] > 0


def test_websocket_frame_count_survives_any_cut() -> None:
    """A plain WebSocket receiver counts whole frames whatever the reads look like: cut
    inside a header, a payload, right at a boundary; frames with 1- and 2-byte lengths."""
    pytest.importorskip("wsproto", reason="wsproto is not installed (pip install '.[web]')")

    async def check() -> None:
        run = Run(Workload(clients=1, senders=1, transport="ws"))
        rng = random.Random(15)
        lines = [
            b'{"response":"message","content":"%s"}\n' % (b"x" * rng.choice((1, 88, 89, 90, 500)))
            for _ in range(60)
        ]
        stream = b"".join(ws_text_frame(line) for line in lines)

        def receiver() -> WebClient:
            client = WebClient(run, 0)
            client.counting = True
            client.expected = len(lines)
            return client

        for cut in range(len(stream) + 1):  # every two-read split
            client = receiver()
            client.data_received(stream[:cut])
            client.data_received(stream[cut:])
            assert (cut, client.count) == (cut, len(lines))
        for _ in range(200):  # many reads of random sizes, down to one byte
            client = receiver()
            at = 0
            while at < len(stream):
                step = rng.choice((1, 2, 3, 5, 40, 300, 4000))
                client.data_received(stream[at : at + step])
                at += step
            assert client.count == len(lines)
            assert client.done
        assert run.errors == []
        client = receiver()  # anything but a text frame (here a close) is an error
        client.data_received(ws_text_frame(lines[0]) + b"\x88\x00")
        assert len(run.errors) == 1 and "unexpected WebSocket frame" in run.errors[0]

    asyncio.run(check())


# benchmarks/cluster_cost.py (issue 14), tiny: its CPU part against one process without a
# bus and two workers on a Redis bus (clients spread over both ports), and its Redis part
# (commands and bytes per message) with two workers and two rooms. Skipped, visibly,
# without redis-server or redis-py.
COST = Path(__file__).resolve().parents[1] / "benchmarks" / "cluster_cost.py"


def test_cluster_cost_measures_cpu_and_redis_commands(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    pytest.importorskip("redis", reason="redis-py is not installed (pip install '.[cluster]')")
    out = tmp_path / "cost.json"
    argv = [sys.executable, str(COST), "--part", "both", "--runs", "1", "--rows", "N=100"]
    argv += ["--setups", "memory,bus2", "--quick", "0.01", "--workers", "2", "--rooms", "2"]
    argv += ["--room-messages", "20", "--idle-seconds", "0.5", "--time-limit", "30"]
    argv += ["--json", str(out)]
    run = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=240)
    assert run.returncode == 0, run.stderr.decode("utf-8", "replace")[-2000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    for setup in ("memory", "bus2"):
        (result,) = report["cpu"]["runs"]["N=100"][setup]
        assert result["errors"] == [], setup
        # 10 senders x 30 messages, each to the 99 clients other than its sender.
        assert result["deliveries_to_others"] == 300 * 99, setup
        assert result["cpu_s_per_m_deliveries"] >= 0, setup  # a tiny run: maybe < 1 tick
    cases = report["redis"]["cases"]
    assert [(c["case"]["workers"], c["case"]["hosts"]) for c in cases] == [(2, 1), (2, 2)]
    for case in cases:
        assert case["errors"] == []
        assert case["messages"] == 20
        assert case["all_commands_per_message"] > 0
        assert case["bytes_out_per_message"] > 0
