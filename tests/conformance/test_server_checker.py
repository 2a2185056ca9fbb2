# The server checker against our own server (every check must pass, default settings) and
# against toy servers with one defect each (exactly that check must fail) or hostile ones
# (bounded time, failures reported, no crash). Runs are concurrent to keep the suite short.
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterator, List, Tuple

import pytest

from ktnchat.conformance.main import main as check_main
from ktnchat.conformance.report import CheckResult, Status, render_table
from ktnchat.conformance.scenarios import server_scenarios
from ktnchat.conformance.server_checks import Options, run_server_checks
from ktnchat.service import ServiceConfig
from tests.conformance.toy_server import ToyServer
from tests.helpers import start_server

FAST = Options(timeout=3.0, quiet=0.5, settle=0.3, jobs=32)
HOSTILE = Options(timeout=1.0, quiet=0.3, settle=0.2, jobs=32)

# (edition, defect) -> the ids that must not PASS, with their status.
CASES: Dict[Tuple[str, str], Dict[str, Status]] = {
    ("2017", ""): {},
    ("2017", "no-echo"): {"msg.echo": Status.FAIL},
    ("2017", "names-stay-taken"): {"crash.name-freed": Status.FAIL},
    ("2017", "dies-on-concat"): {"framing.two-in-one": Status.WARN},
    ("2017", "hijack"): {"login.taken": Status.FAIL},
    ("2017", "numeric-timestamps"): {"timestamps": Status.FAIL},
    ("2017", "no-history"): {"history.on-login": Status.FAIL},
    ("2017", "underscore-ok"): {"login.underscore": Status.FAIL},
    ("2014", ""): {},
    ("2014", "no-echo"): {"message.echo": Status.FAIL},
    ("2014", "hijack"): {"login.taken": Status.FAIL},
    ("2014", "error-text"): {"login.invalid-chars": Status.WARN, "login.taken": Status.WARN},
}


def _problems(results: List[CheckResult]) -> Dict[str, Status]:
    return {r.check_id: r.status for r in results if r.status is not Status.PASS}


@pytest.fixture(scope="module")
def toy_results() -> Iterator[Dict[Tuple[str, str], List[CheckResult]]]:
    servers = {case: ToyServer(case[0], {case[1]} - {""}) for case in CASES}
    try:
        with ThreadPoolExecutor(max_workers=len(servers)) as pool:
            futures = {
                case: pool.submit(run_server_checks, s.address, case[0], FAST)
                for case, s in servers.items()
            }
            yield {case: f.result(timeout=120) for case, f in futures.items()}
    finally:
        for server in servers.values():
            server.stop()


@pytest.mark.parametrize("case", list(CASES), ids=[f"{e}-{d or 'good'}" for e, d in CASES])
def test_each_defect_is_reported_alone(
    toy_results: Dict[Tuple[str, str], List[CheckResult]], case: Tuple[str, str]
) -> None:
    results = toy_results[case]
    assert _problems(results) == CASES[case], render_table(str(case), results)
    assert len(results) == len(server_scenarios(case[0]))


def test_our_server_passes_everything_with_default_and_test_settings() -> None:
    """Both editions' dialogues against our server, default settings (one port)."""
    default = start_server(service_config=ServiceConfig())  # pacing and flood control on
    no_flood = start_server()
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            runs = [
                pool.submit(run_server_checks, s.address, "2017", FAST) for s in (default, no_flood)
            ]
            edition_2014 = pool.submit(run_server_checks, default.address, "2014", FAST)
            for run in runs:
                results = run.result(timeout=120)
                assert _problems(results) == {}, render_table("ours", results)
                history = next(r for r in results if r.check_id == "history.on-login")
                assert history.detail == "history encoding: json-strings"
            results_2014 = edition_2014.result(timeout=120)
            assert _problems(results_2014) == {}, render_table("ours, 2014", results_2014)
            assert len(results_2014) == len(server_scenarios("2014"))
    finally:
        default.shutdown()
        no_flood.shutdown()


@pytest.mark.parametrize("mode", ["silent", "flood", "close", "refused"])
def test_hostile_servers_are_reported_not_hung(mode: str) -> None:
    server = ToyServer("2017", set(), mode if mode != "refused" else "chat")
    address = server.address
    if mode == "refused":
        server.stop()  # nothing listens there any more
    started = time.monotonic()
    try:
        results = run_server_checks(address, "2017", HOSTILE)
    finally:
        server.stop()
    assert time.monotonic() - started < 30
    assert len(results) == len(server_scenarios("2017"))
    if mode != "flood":  # a flood of info objects does satisfy a few liberal checks
        assert all(r.status is not Status.PASS for r in results), render_table(mode, results)
    assert not any(r.detail.startswith("checker error") for r in results)
    assert any(r.status is Status.FAIL for r in results)


def test_cli_json_report_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    server = start_server(service_config=ServiceConfig())
    broken = ToyServer("2017", {"no-echo"})
    try:
        host, port = server.address
        args = ["server", f"{host}:{port}", "--json", "--only", "msg", "--jobs", "3"]
        assert check_main(args) == 0
        document = json.loads(capsys.readouterr().out)
        assert document["summary"] == {"PASS": 3, "WARN": 0, "FAIL": 0}
        assert {r["id"] for r in document["results"]} == {"msg.broadcast", "msg.echo", "msg.sender"}
        assert all(r["seed"] and r["rule"] for r in document["results"])
        host, port = broken.address
        assert check_main(["server", host, str(port), "--only", "msg.echo", "--timeout", "1"]) == 1
        table = capsys.readouterr().out
        assert "FAIL  msg.echo" in table and "including the one who originated" in table
        assert check_main(["server", "localhost:notaport"]) == 2
    finally:
        server.shutdown()
        broken.stop()
