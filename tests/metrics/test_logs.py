# The server's log lines from a real process: --log-format json gives one JSON object per
# line with the stable fields, and a moderation action names who did it in both formats.
from __future__ import annotations

import json
import os
import re
import signal
from typing import Any, Dict, List, Tuple

from tests.helpers import Peer
from tests.processes import ServerProcess

SECRET = "logs-admin-secret-1616"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def run_session(*options: str) -> Tuple[List[str], Dict[str, str]]:
    """Start a server, have alice (an admin) kick bob, stop it; its log lines, and each
    user's peer address as the server sees it."""
    os.environ["KTNCHAT_ADMIN_SECRET"] = SECRET
    try:
        server = ServerProcess("--port", "0", "--pace-ms", "0", "--flood", "off", *options)
    finally:
        del os.environ["KTNCHAT_ADMIN_SECRET"]
    try:
        address = server.wait_listening()
        server.wait_signal_handlers()
        with Peer(address, stream=True) as alice, Peer(address, stream=True) as bob:
            alice.login("alice")
            bob.login("bob")
            alice.send("admin", SECRET)
            alice.expect(lambda r: r.get("event") == "admin")
            alice.send("kick", "bob being rude")
            bob.expect(lambda r: r.get("event") == "kicked")
            alice.expect(lambda r: r.get("event") == "kick")
            peers = {
                name: "{}:{}".format(*peer.sock.getsockname()[:2])
                for name, peer in (("alice", alice), ("bob", bob))
            }
        server.proc.send_signal(signal.SIGTERM)
        assert server.wait_exit() == 0
    finally:
        server.kill()
    return server.lines, peers


def test_json_lines_carry_the_stable_fields() -> None:
    lines, peers = run_session("--log-format", "json")
    records: List[Dict[str, Any]] = [json.loads(line) for line in lines]  # every line
    assert records
    for record in records:
        assert ISO_UTC.match(record["time"]), record
        assert record["level"] in ("debug", "info", "warning", "error")
        assert record["event"] and record["message"] and record["logger"]
    by_event: Dict[str, List[Dict[str, Any]]] = {}
    for record in records:
        by_event.setdefault(record["event"], []).append(record)
    assert {"listening", "login", "moderation", "logout", "stopped"} <= set(by_event)

    logins = {r["user"]: r for r in by_event["login"]}
    assert set(logins) == {"alice", "bob"}
    for name, record in logins.items():
        assert record["peer"] == peers[name]
        assert record["room"] == "lobby"
        assert isinstance(record["conn"], int)
    assert logins["alice"]["conn"] != logins["bob"]["conn"]

    kicks = [r for r in by_event["moderation"] if r["action"] == "kick"]
    assert len(kicks) == 1
    kick = kicks[0]
    # Who did it: the moderator's name, connection and address; whom, and where.
    assert kick["by"] == "alice" and kick["user"] == "alice"
    assert kick["conn"] == logins["alice"]["conn"] and kick["peer"] == peers["alice"]
    assert kick["target"] == "bob" and kick["room"] == "lobby"
    assert "alice" in kick["message"] and "bob" in kick["message"]
    # Bob's logout by the kick carries his own connection's fields.
    gone = [r for r in by_event["logout"] if r["user"] == "bob"]
    assert gone and gone[0]["conn"] == logins["bob"]["conn"]
    assert "alice" in gone[0]["message"]


def test_human_lines_name_the_moderator_too() -> None:
    lines, _ = run_session()  # the default format
    assert not any(line.startswith("{") for line in lines)
    moderation = [line for line in lines if "moderation:" in line]
    assert len(moderation) == 2  # alice proving the admin secret, then the kick
    assert any("moderation: alice kick bob in lobby being rude" in line for line in moderation)
