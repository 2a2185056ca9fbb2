# The client checker against our own client (every check must pass) and a student-style
# client with one defect each (exactly that check must fail), through real ptys; and the
# history-shape report (which shapes each model client survives) checked shape by shape.
# The runs are concurrent (one module fixture) to keep the suite short.
from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Iterator, List, Sequence

import pytest

from ktnchat.conformance.client_checks import ClientOptions, all_client_checks, run_client_checks
from ktnchat.conformance.history_shapes import SHAPES, survival, survival_summary
from ktnchat.conformance.main import main as check_main
from ktnchat.conformance.report import CheckResult, Status, render_table

REPO = Path(__file__).resolve().parents[2]
STUDENT = str(Path(__file__).with_name("student_client.py"))
OURS = "ours"

CASES: Dict[str, Dict[str, Status]] = {
    "": {},
    "--naive": {
        "framing.two-in-one": Status.WARN,
        "framing.split": Status.WARN,
        "history.objects": Status.WARN,
        "history.json-text": Status.WARN,
        "history.long": Status.WARN,
    },
    "msg-word": {"request.msg": Status.FAIL},
    "names-empty": {"request.names": Status.WARN},
    "logout-no-content": {"request.logout": Status.FAIL},
    "hide-errors": {"show.error": Status.FAIL},
    "dies-on-concat": {"framing.two-in-one": Status.WARN},
    "objects-only": {
        "history.json-strings": Status.FAIL,
        "history.long": Status.WARN,
        "history.numeric-timestamp": Status.WARN,
    },
    "last-entry": {"history.empty": Status.FAIL},
    "parse-time": {"history.numeric-timestamp": Status.WARN},
    "info-concat": {"names.list": Status.WARN},
    "four-keys": {"history.messages": Status.WARN},
    "ignore-history": {
        "history.objects": Status.WARN,
        "history.json-strings": Status.FAIL,
        "history.json-text": Status.WARN,
        "history.long": Status.WARN,
        "history.numeric-timestamp": Status.WARN,
    },
}

ALL_SHAPES = [shape.name for shape in SHAPES]


def _groups(
    shown: Sequence[str], not_shown: Sequence[str] = (), died: Sequence[str] = ()
) -> Dict[str, List[str]]:
    return {"shown": list(shown), "not_shown": list(not_shown), "died": list(died),
            "not_judged": []}  # fmt: skip


# The history-shape report, shape by shape, for model clients with different patterns.
SURVIVAL: Dict[str, Dict[str, List[str]]] = {
    OURS: _groups(ALL_SHAPES),
    "": _groups(ALL_SHAPES),
    "--naive": _groups(
        ["json-strings", "empty", "numeric-timestamp", "names-list", "messages"],
        died=["objects", "json-text", "long"],
    ),
    "objects-only": _groups(
        ["objects", "json-text", "empty", "names-list", "messages"],
        died=["json-strings", "long", "numeric-timestamp"],
    ),
    "ignore-history": _groups(
        ["empty", "names-list", "messages"],
        not_shown=["objects", "json-strings", "json-text", "long", "numeric-timestamp"],
    ),
    "four-keys": _groups([s for s in ALL_SHAPES if s != "messages"], died=["messages"]),
}


def _options(*command: str) -> ClientOptions:
    return ClientOptions(command=command, timeout=4.0, jobs=6, cwd=str(REPO))


def _command(case: str) -> List[str]:
    if case == OURS:
        return [sys.executable, "-m", "ktnchat", "client", "--plain", "{host}", "{port}"]
    extra = ["--naive"] if case == "--naive" else (["--defect", case] if case else [])
    return [sys.executable, STUDENT, "{host}", "{port}", *extra]


@pytest.fixture(scope="module")
def results() -> Iterator[Dict[str, List[CheckResult]]]:
    """Every case's full client check, run a few cases at a time."""
    cases = [OURS, *CASES]
    with ThreadPoolExecutor(max_workers=5) as pool:
        futures = {c: pool.submit(run_client_checks, _options(*_command(c))) for c in cases}
        yield {c: f.result(timeout=100) for c, f in futures.items()}


def test_our_plain_client_passes_everything(results: Dict[str, List[CheckResult]]) -> None:
    ours = results[OURS]
    assert all(r.status is Status.PASS for r in ours), render_table("ours", ours)
    assert len(ours) == len(all_client_checks())


@pytest.mark.parametrize("case", list(CASES), ids=[c or "good" for c in CASES])
def test_each_client_defect_is_reported_alone(
    results: Dict[str, List[CheckResult]], case: str
) -> None:
    problems = {r.check_id: r.status for r in results[case] if r.status is not Status.PASS}
    assert problems == CASES[case], render_table(case, results[case])


@pytest.mark.parametrize("case", list(SURVIVAL), ids=[c or "good" for c in SURVIVAL])
def test_history_shapes_survived_shape_by_shape(
    results: Dict[str, List[CheckResult]], case: str
) -> None:
    assert survival(results[case]) == SURVIVAL[case], render_table(case, results[case])
    for result in results[case]:
        shape = result.extra.get("shape")
        if shape is not None:
            died = shape in SURVIVAL[case]["died"]
            assert result.detail.startswith("not survived") is died, result.detail
            if shape in SURVIVAL[case]["not_shown"]:
                assert result.detail.startswith("survived, but expected"), result.detail


def test_the_summary_line_names_the_shapes(results: Dict[str, List[CheckResult]]) -> None:
    assert survival_summary(results["--naive"]) == (
        "history shapes survived: 5 of 8 (json-strings, empty, numeric-timestamp, names-list, "
        "messages); died on: objects, json-text, long"
    )
    assert survival_summary(results["ignore-history"]) == (
        "history shapes survived: 8 of 8 (empty, names-list, messages, objects (not shown), "
        "json-strings (not shown), json-text (not shown), long (not shown), "
        "numeric-timestamp (not shown))"
    )
    assert survival_summary(results["msg-word"][:3]) is None  # no shape checked


def test_cli_appends_the_address_and_reports_a_dead_client(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["client", "--only", "request.login", "--timeout", "3", "--", sys.executable, STUDENT]
    assert check_main(args) == 0  # HOST PORT appended
    assert "PASS  request.login" in capsys.readouterr().out
    dead = ["client", "--only", "show.info", "--timeout", "2", "--", sys.executable, "-c", "pass"]
    assert check_main(dead) == 1
    assert "did not connect" in capsys.readouterr().out
    assert check_main(["client", "--input", "commands"]) == 2


def test_cli_reports_history_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    command = ["--", sys.executable, STUDENT, "{host}", "{port}", "--defect", "four-keys"]
    args = ["client", "--only", "history.messages", "--only", "history.empty", "--timeout", "2"]
    assert check_main([*args, *command]) == 0  # a WARN is not a FAIL
    table = capsys.readouterr().out
    assert "WARN  history.messages" in table and "PASS  history.empty" in table
    assert "history shapes survived: 1 of 2 (empty); died on: messages" in table
    assert check_main([*args, "--json", *command]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["history_shapes"] == {
        "shown": ["empty"], "not_shown": [], "died": ["messages"], "not_judged": [],
    }  # fmt: skip


def test_a_client_that_reads_lines_is_checked_and_told_it_needs_the_newline() -> None:
    # Model H (tests/compat) reads the socket line by line, as some students' clients do.
    # The fake server ends each object with a newline, as ktnchat's server does, so its
    # other checks mean something; the bare-object check says what it would die of.
    model = str(REPO / "tests" / "compat" / "student_clients.py")
    command = (sys.executable, model, "--behaviour", "H", "{host}", "{port}")
    got = {
        r.check_id: r.status
        for r in run_client_checks(_options(*command), only=["show.message", "framing."])
    }
    assert got["show.message"] is Status.PASS
    assert got["framing.newline"] is Status.PASS
    assert got["framing.bare"] is not Status.PASS
