# The short chaos soak (tools/soak.py): 100 clients for 30 s, in two crowds, of random valid
# and invalid actions against a real server process, with its invariants checked by the script;
# then the same against two worker processes on a Redis bus (skipped, visibly, without
# redis-server).
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict

import pytest

SOAK = Path(__file__).resolve().parents[1] / "tools" / "soak.py"


@pytest.mark.timeout(400)
def test_short_soak_holds_every_invariant(tmp_path: Path) -> None:
    report = tmp_path / "soak.json"
    run = subprocess.run(
        [
            sys.executable,
            str(SOAK),
            "--clients",
            "100",
            "--seconds",
            "30",
            "--probe-bound",
            "5",
            "--rounds",
            "2",
            "--json",
            str(report),
            "--memwatch",
            str(tmp_path / "memory"),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=380,
    )
    result = json.loads(report.read_text())
    assert run.returncode == 0, result["violations"]
    assert result["violations"] == []
    assert result["counts"]["acked"] > 100  # the load really ran
    assert result["acknowledged_missing_at_observers"] == 0
    assert result["server_tracebacks"] == 0
    assert len(result["rss_kib_after_each_round"]) == 2
    # The server's memory breakdown at the baseline, after each round and at the end; no
    # ktnchat object was left for the cyclic GC (closed connections are freed at once).
    reports = result["memwatch"]
    assert [r["moment"] for r in reports] == ["baseline", "after round 1", "after"]
    for found in reports:
        assert found["pymalloc"]["arenas"] > 0
        assert found["rss_kib"] > 0
        assert not [kind for kind in found["cycle_garbage"] if kind.startswith("ktnchat.")]


# The same soak against a two-worker cluster (issue 14): a redis-server on a free loopback
# port, two server processes on it sharing one SQLite file, the clients spread over both,
# one observer per room on each worker. One run, checked by two tests: every invariant but
# the order one must hold; one order per room is a known failure before the cluster redesign.
@pytest.fixture(scope="module")
def two_worker_soak(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Any]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    pytest.importorskip("redis", reason="redis-py is not installed (pip install '.[cluster]')")
    report = tmp_path_factory.mktemp("soak2") / "soak.json"
    run = subprocess.run(
        [
            *(sys.executable, str(SOAK), "--workers", "2", "--clients", "100"),
            *("--seconds", "30", "--probe-bound", "5", "--rounds", "2", "--json", str(report)),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=380,
    )
    assert report.exists(), run.stderr.decode("utf-8", "replace")[-2000:]
    result: Dict[str, Any] = json.loads(report.read_text())
    return result


@pytest.mark.timeout(400)
def test_two_worker_soak_holds_every_invariant(two_worker_soak: Dict[str, Any]) -> None:
    result = two_worker_soak
    assert result["workers"] == 2
    assert result["violations"] == []
    assert result["counts"]["acked"] > 100  # the load really ran
    assert result["acknowledged_missing_at_observers"] == 0
    assert result["server_tracebacks"] == 0
    assert result["server_exit"] == [0, 0]
    assert [len(rss) for rss in result["rss_kib_after_each_round"]] == [2, 2]


@pytest.mark.timeout(400)
def test_two_worker_soak_one_order_per_room(two_worker_soak: Dict[str, Any]) -> None:
    result = two_worker_soak
    assert result["readers_compared"] > 8
    assert result["order_violations"] == 0, result["order_examples"]
