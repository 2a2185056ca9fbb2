# The server checker against our own server (every check must pass, default settings) and
# against toy servers with one defect each (exactly that check must fail) or hostile ones
# (bounded time, failures reported, no crash). Runs are concurrent to keep the suite short.
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, Iterator, List, Tuple

import pytest

from ktnchat.conformance.main import main as check_main
from ktnchat.conformance.report import CheckResult, Status, render_table
from ktnchat.conformance.scenarios import server_scenarios
from ktnchat.conformance.server_checks import Options, run_server_checks
from ktnchat.protocol import HistoryDelivery, HistoryEncoding
from ktnchat.server import ChatServer
from ktnchat.service import ServiceConfig
from tests.conformance.toy_server import ToyServer
from tests.helpers import start_server

FAST = Options(timeout=3.0, quiet=0.5, settle=0.3, jobs=32)
REPLAYED_DETAIL = "history delivery: the 2 earlier messages replayed as message responses"
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
    ("2017", "empty-history"): {"history.on-login": Status.FAIL},
    ("2017", "replay-history"): {},
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


# How each toy server's login brings the earlier messages, as history.on-login reports it.
HISTORY_DETAIL = {
    "": "history encoding: json-strings",
    "replay-history": REPLAYED_DETAIL,
    "no-history": "no earlier messages after login: neither a history response nor the "
    "earlier messages replayed as message responses",
    "empty-history": "history (empty) does not hold the earlier messages ",
}


@pytest.mark.parametrize("defect", list(HISTORY_DETAIL), ids=[d or "good" for d in HISTORY_DETAIL])
def test_history_on_login_says_how_earlier_messages_came(
    toy_results: Dict[Tuple[str, str], List[CheckResult]], defect: str
) -> None:
    results = toy_results[("2017", defect)]
    history = next(r for r in results if r.check_id == "history.on-login")
    assert history.detail.startswith(HISTORY_DETAIL[defect]), render_table(defect, results)


def test_our_server_passes_everything_with_default_and_test_settings(
    server_factory: Callable[..., ChatServer],
) -> None:
    """Both editions' dialogues against our server: default settings (earlier messages
    replayed as message responses), without flood control, and with the seed's history
    response (--history-delivery history)."""
    default = server_factory(service_config=ServiceConfig())  # pacing and flood control on
    no_flood = server_factory()
    seed_shape = server_factory(history_delivery=HistoryDelivery.HISTORY)
    expected = {
        default: REPLAYED_DETAIL,
        no_flood: REPLAYED_DETAIL,
        seed_shape: "history encoding: json-strings",
    }
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = {s: pool.submit(run_server_checks, s.address, "2017", FAST) for s in expected}
        edition_2014 = pool.submit(run_server_checks, default.address, "2014", FAST)
        for server, run in runs.items():
            results = run.result(timeout=120)
            assert _problems(results) == {}, render_table("ours", results)
            history = next(r for r in results if r.check_id == "history.on-login")
            assert history.detail == expected[server]
        results_2014 = edition_2014.result(timeout=120)
        assert _problems(results_2014) == {}, render_table("ours, 2014", results_2014)
        assert len(results_2014) == len(server_scenarios("2014"))


@pytest.mark.parametrize(
    ("encoding", "status"),
    [(HistoryEncoding.OBJECTS, Status.PASS), (HistoryEncoding.JSON_TEXT, Status.FAIL)],
)
def test_history_response_shapes_of_our_server(
    server_factory: Callable[..., ChatServer], encoding: HistoryEncoding, status: Status
) -> None:
    """The seed's list shapes pass; the JSON text of the list is not a list: it FAILs."""
    server = server_factory(history_delivery=HistoryDelivery.HISTORY, history_encoding=encoding)
    (result,) = run_server_checks(server.address, "2017", FAST, ["history.on-login"])
    assert result.status is status, render_table(encoding.value, [result])
    assert encoding.value in result.detail


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
