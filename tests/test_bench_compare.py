# `ktnchat bench --compare` (ktnchat/bench_compare.py, issue 17) in its tiny form against
# real servers on loopback: ktnchat and the C relay (benchmarks/relay/relay.c, built with
# gcc by the bench), and InspIRCd and ngIRCd when installed (skipped, with the reason, when
# not). Every row runs once per server; every delivery must be counted and no run may
# report an error; every server process must be gone afterwards. The line client's counter
# is also fed one IRC stream cut at every place a read can cut it. No timing assertions.
# Rules: loopback only; the harness starts and stops every server itself.
from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path
from typing import Any, Dict, List

import pytest

from ktnchat.bench import Run, Workload, main
from ktnchat.bench_compare import RELAY_SOURCE, LineClient, find_binary, rows_for

SERVER_NAMES = ("inspircd", "ngircd", "relay")  # the C servers' process names


def children() -> List[str]:
    """Commands of this process's live children (a stopped server must not be one)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            found.append(stat[stat.index("(") + 1 : stat.rindex(")")])
    return found


def run_compare(tmp_path: Path, servers: str) -> Dict[str, Any]:
    out = tmp_path / "compare.json"
    argv = ["--compare", "--tiny", "--runs", "1", "--no-pin", "--servers", servers]
    argv += ["--time-limit", "20", "--json", str(out)]
    status = main(argv)
    report: Dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    errors = [e for row in report["rows"] for s in row["servers"].values() for e in s["errors"]]
    assert (status, errors) == (0, [])
    assert [name for name in SERVER_NAMES if name in children()] == []
    return report


def check_every_delivery(report: Dict[str, Any], servers: List[str]) -> None:
    assert report["servers"] == servers
    fanout, fanout2, idle = rows_for("tiny")
    for row, spec in zip(report["rows"], (fanout, fanout2, idle)):
        work = spec.workload
        for name in servers:
            (run,) = row["servers"][name]["runs"]
            assert run["errors"] == [], (row["key"], name)
            if work.shape == "idle":
                assert run["rss_per_connection_kib"] is not None, name
                assert run["connect_login_per_s"] > 0, name
                continue
            # The definition: (N-1) deliveries per line, the sender's own not counted.
            expected = (work.clients - 1) * work.senders * work.messages
            assert run["deliveries_to_others"] == run["expected_to_others"] == expected, name
            assert run["deliveries"] == run["expected_deliveries"], name
            assert run["latency_samples"] > 0, name
            assert "others_per_s" in run, name


def test_compare_ktnchat_and_relay(tmp_path: Path) -> None:
    servers = ["ktnchat"]
    if shutil.which("gcc") or shutil.which("cc"):
        servers.append("relay")
    report = run_compare(tmp_path, ",".join(servers))
    check_every_delivery(report, servers)
    if "relay" not in servers:
        pytest.skip("no C compiler (gcc): the relay part was not run")
    assert os.path.exists(RELAY_SOURCE)


@pytest.mark.parametrize("name", ["inspircd", "ngircd"])
def test_compare_irc_server(tmp_path: Path, name: str) -> None:
    if find_binary(name) is None:
        pytest.skip(f"{name} is not installed (Debian package `{name}`)")
    report = run_compare(tmp_path, f"ktnchat,{name}")
    check_every_delivery(report, ["ktnchat", name])


class FakeTransport:
    def __init__(self) -> None:
        self.written: List[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def abort(self) -> None:
        pass


def test_line_client_counts_relayed_lines_whatever_the_cuts() -> None:
    """Only `PRIVMSG #room :` lines count, however reads cut the stream; a PING in the
    middle is answered once; a stray JOIN notice is not counted."""

    async def check() -> None:
        run = Run(Workload(clients=3, senders=1, messages=20))
        lines = [
            b":u0!~u0@127.0.0.1 PRIVMSG #room :b|0|%d|0|%s\r\n" % (seq, b"x" * (seq * 7 % 90))
            for seq in range(20)
        ]
        join, ping = b":u9!u9@127.0.0.1 JOIN :#room\r\n", b"PING :bench.local\r\n"
        stream = b"".join([*lines[:5], join, *lines[5:12], ping, *lines[12:]])

        def receiver() -> tuple[LineClient, FakeTransport]:
            client = LineClient(run, 2, "irc")
            transport = FakeTransport()
            client.transport = transport  # type: ignore[assignment]
            client.counting = True
            client.expected = len(lines)
            return client, transport

        for cut in range(len(stream) + 1):
            client, transport = receiver()
            client.data_received(stream[:cut])
            client.data_received(stream[cut:])
            assert (cut, client.count, client.other_lines) == (cut, len(lines), 2)
            assert transport.written == [b"PONG :bench.local\r\n"]
            assert client.done
        for step in (1, 2, 3, 50):
            client, transport = receiver()
            for at in range(0, len(stream), step):
                client.data_received(stream[at : at + step])
            assert (step, client.count) == (step, len(lines))
        assert run.errors == []

    asyncio.run(check())
