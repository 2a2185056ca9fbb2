# The short chaos soak (tools/soak.py): 100 clients for 30 s, in two crowds, of random valid
# and invalid actions against a real server process, with its invariants checked by the script.
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
