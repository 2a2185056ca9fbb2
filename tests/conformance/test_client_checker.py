# The client checker against our own client (every check must pass) and a student-style
# client with one defect each (exactly that check must fail), through real ptys.
from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict

import pytest

from ktnchat.conformance.client_checks import ClientOptions, run_client_checks
from ktnchat.conformance.main import main as check_main
from ktnchat.conformance.report import Status, render_table

REPO = Path(__file__).resolve().parents[2]
STUDENT = str(Path(__file__).with_name("student_client.py"))

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
}


def _options(*command: str) -> ClientOptions:
    return ClientOptions(command=command, timeout=4.0, jobs=8, cwd=str(REPO))


def test_our_plain_client_passes_everything() -> None:
    command = (sys.executable, "-m", "ktnchat", "client", "--plain", "{host}", "{port}")
    results = run_client_checks(_options(*command))
    assert all(r.status is Status.PASS for r in results), render_table("ours", results)


@pytest.mark.parametrize("case", list(CASES), ids=[c or "good" for c in CASES])
def test_each_client_defect_is_reported_alone(case: str) -> None:
    extra = ["--naive"] if case == "--naive" else (["--defect", case] if case else [])
    results = run_client_checks(_options(sys.executable, STUDENT, "{host}", "{port}", *extra))
    problems = {r.check_id: r.status for r in results if r.status is not Status.PASS}
    assert problems == CASES[case], render_table(case, results)


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
