# GET /metrics from a real server (in this process, real sockets on port 0) after a
# scripted session: every counter moved by exactly what the session did, read back with
# prometheus_client's own parser. Bytes out are checked against what the clients read.
# The session's server stores in SQLite, so requests run on the storage worker thread
# and its counts are summed with the I/O loop's, and the store's calls are timed.
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

from ktnchat.server import ChatServer
from ktnchat.service import ServiceConfig
from ktnchat.service.flood import FloodConfig
from ktnchat.storage import storage_from_url
from tests.helpers import Peer, wait_until
from tests.metrics.support import scrape
from tests.web.test_websocket_server import WSPeer

SECRET = "metrics-admin-secret-16"
W = {"worker": "0"}


def received_bytes(*peers: Peer) -> int:
    return sum(len(segment) for peer in peers for segment in peer.segments)


def marker(peer: Peer, sent: Counter) -> None:
    """A last request whose answer follows everything queued before it: once it is read,
    the peer has read every byte the server wrote to it."""
    peer.send("stream", "on")
    peer.expect(lambda r: r.get("stream") is True)
    sent["stream", "ok"] += 1


def test_counters_move_by_exactly_what_the_session_did(
    server_factory: Callable[..., ChatServer], tmp_path: Path
) -> None:
    server = server_factory(
        storage=storage_from_url(f"sqlite:///{tmp_path / 'chat.db'}"),
        admin_secret=SECRET,
        metrics_port=0,
        pace_interval=0.0,
    )
    sent: Counter = Counter()  # (request word, outcome) of every request sent

    def login(peer: Peer, name: str) -> None:
        peer.login(name)  # login, then names as a marker
        sent["login", "ok"] += 1
        sent["names", "ok"] += 1

    with (
        Peer(server.address, stream=True) as alice,
        Peer(server.address, stream=True) as bob,
        Peer(server.address, stream=True) as carol,
    ):
        sent["stream", "ok"] += 3  # each Peer said `stream on` first
        login(alice, "alice")
        login(bob, "bob")  # a join notice to alice: 1 delivery
        login(carol, "carol")  # to alice and bob: 2
        alice.expect(lambda r: r.get("event") == "join" and r.get("username") == "carol")
        bob.expect(lambda r: r.get("event") == "join" and r.get("username") == "carol")

        with Peer(server.address) as stranger:
            stranger.send("login", "no spaces allowed!")
            assert stranger.expect_response("error")["request"] == "login"
            sent["login", "error"] += 1
            stranger_bytes = received_bytes(stranger)
        bob.send("dance", None)  # not a request word: counted as "other"
        assert bob.expect_response("error")["code"]
        sent["other", "error"] += 1

        for n in range(10):  # 10 messages to a room of 3 (the sender's echo included): 30
            bob.send("msg", f"message {n}")
            sent["msg", "ok"] += 1
        for peer in (alice, bob, carol):
            peer.expect_response("message", content="message 9")

        alice.send("admin", SECRET)
        alice.expect(lambda r: r.get("event") == "admin")
        sent["admin", "ok"] += 1
        # Kicked from the lobby: carol is told (1) and logged out, alice and bob hear she
        # left (2) and that she was kicked (2): 5 deliveries.
        alice.send("kick", "carol rude")
        sent["kick", "ok"] += 1
        carol.expect(lambda r: r.get("event") == "kicked")
        for peer in (alice, bob):
            peer.expect(lambda r: r.get("event") == "kick" and r.get("username") == "carol")
        for peer in (alice, bob, carol):
            marker(peer, sent)

        wait_until(lambda: server.connection_count() == 3)  # the stranger's close is in
        first = scrape(server.metrics_address)
        assert first.status == 200
        assert first.content_type.startswith("text/plain; version=0.0.4")
        value = first.value

        assert value("ktnchat_logins_total", **W) == 3
        assert value("ktnchat_logins_failed_total", **W) == 1
        assert value("ktnchat_messages_stored_total", **W) == 10
        assert value("ktnchat_moderation_actions_total", kind="kick", **W) == 1
        assert value("ktnchat_moderation_actions_total") == 1  # nothing else: admin is not
        assert value("ktnchat_deliveries_total", **W) == 3 + 30 + 5
        requests = {
            (dict(labels)["request"], dict(labels)["outcome"]): v
            for (name, labels), v in first.samples.items()
            if name == "ktnchat_requests_total"
        }
        assert requests == dict(sent)
        assert value("ktnchat_storage_seconds_count", operation="append_message", **W) == 10
        assert value("ktnchat_storage_seconds_bucket", operation="append_message", le="+Inf") == 10
        # Every login looked its name up; the stranger's too ("no", with a "password").
        assert value("ktnchat_storage_seconds_count", operation="get_account") == 4
        assert value("ktnchat_storage_seconds_count", operation="append_audit") == 2
        # Every byte written to a client socket, and no other.
        assert value("ktnchat_bytes_out_total", **W) == received_bytes(alice, bob, carol) + (
            stranger_bytes
        )
        assert value("ktnchat_sockets_accepted_total", listener="chat", **W) == 4
        assert value("ktnchat_sockets_accepted_total", listener="metrics", **W) == 1
        edition = {"edition": "2017", "transport": "tcp", **W}
        assert value("ktnchat_connections_opened_total", **edition) == 4
        assert value("ktnchat_connections_closed_total", **edition) == 1
        assert value("ktnchat_connections_open", **edition) == 3
        assert value("ktnchat_users_online", **W) == 2  # carol was logged out by the kick
        for quiet in (
            "ktnchat_outbox_drops_total",
            "ktnchat_paced_to_streaming_total",
            "ktnchat_flood_refusals_total",
            "ktnchat_flood_mutes_total",
            "ktnchat_bus_catch_ups_total",
            "ktnchat_sockets_refused_total",
        ):
            assert value(quiet) == 0, quiet
        assert value("ktnchat_loop_pass_seconds_count", **W) > 0
        # No label that grows with the chat: no user or room names anywhere.
        for _, labels in first.samples:
            for label, text in labels:
                assert text not in ("alice", "bob", "carol", "lobby", "dance"), (label, text)

        # The first scrape's own bytes are in the second, which changed nothing else.
        second = scrape(server.metrics_address)
        assert (
            second.value("ktnchat_bytes_out_total")
            == received_bytes(alice, bob, carol) + stranger_bytes + first.wire_bytes
        )
        assert second.value("ktnchat_sockets_accepted_total", listener="metrics") == 2
        assert second.value("ktnchat_deliveries_total") == 38
        assert second.value("ktnchat_logins_total") == 3


def test_editions_and_transports_are_told_apart(server_factory: Callable[..., ChatServer]) -> None:
    server = server_factory(web_port=0, pace_interval=0.0)
    with Peer(server.address) as old, Peer(server.address) as modern:
        old.send_raw(json.dumps({"request": "login", "username": "old_timer"}).encode())
        assert old.expect(lambda r: True)["response"] == "login"
        modern.login("modern")
        browser = WSPeer(server.web_address)
        try:
            browser.send("login", "webby")
            browser.expect(lambda r: r.get("username") == "webby")
            page = scrape(server.web_address)  # /metrics on the web listener
        finally:
            browser.close()
    assert page.status == 200
    opened: Dict[Tuple[Any, Any], float] = {
        (dict(labels)["edition"], dict(labels)["transport"]): v
        for (name, labels), v in page.samples.items()
        if name == "ktnchat_connections_opened_total"
    }
    assert opened == {("2014", "tcp"): 1, ("2017", "tcp"): 1, ("2017", "websocket"): 1}
    assert page.value("ktnchat_connections_open", edition="2014") == 1
    # Sockets: two TCP; the WebSocket and this scrape on the web listener.
    assert page.value("ktnchat_sockets_accepted_total", listener="chat") == 2
    assert page.value("ktnchat_sockets_accepted_total", listener="web") == 2
    assert page.value("ktnchat_logins_total") == 3
    assert page.value("ktnchat_users_online") == 3


def test_the_metrics_listener_serves_nothing_of_the_chat(
    server_factory: Callable[..., ChatServer],
) -> None:
    server = server_factory(metrics_port=0, web_port=0)
    for path, status in (("/", 404), ("/index.html", 404), ("/ws", 404), ("/healthz", 200)):
        assert scrape(server.metrics_address, path).status == status, path
    # With a listener of its own, /metrics is not on the (public) web listener.
    assert scrape(server.web_address).status == 404
    assert scrape(server.web_address, "/").status == 200
    page = scrape(server.metrics_address)
    assert page.value("ktnchat_sockets_accepted_total", listener="metrics") == 5
    assert page.value("ktnchat_sockets_accepted_total", listener="web") == 2


def test_metrics_off_counts_nothing_and_serves_no_page(
    server_factory: Callable[..., ChatServer], tmp_path: Path
) -> None:
    store = storage_from_url(f"sqlite:///{tmp_path / 'chat.db'}")
    server = server_factory(storage=store, web_port=0, metrics=False)
    with Peer(server.address, stream=True) as alice:
        alice.login("alice")
        alice.send("msg", "not counted")
        alice.expect_response("message")
    assert scrape(server.web_address).status == 404
    assert server.metrics is None
    assert server.service.storage is store  # not wrapped to be timed


def test_flood_refusals_and_mutes_are_counted(server_factory: Callable[..., ChatServer]) -> None:
    flood = FloodConfig(
        message_rate=0.001,  # no refill worth a token during the test
        message_burst=2,
        request_rate=1000,
        request_burst=1000,
        strikes_to_mute=3,
        mute_seconds=600,
    )
    server = server_factory(
        service_config=ServiceConfig(flood=flood), metrics_port=0, pace_interval=0.0
    )
    with Peer(server.address, stream=True) as flooder:
        flooder.login("flooder")
        for n in range(6):
            flooder.send("msg", f"spam {n}")
        # 2 pass; the 3rd and 4th are refused (strikes), the 5th starts the mute, the 6th
        # meets it.
        for n in range(2):
            flooder.expect_response("message", content=f"spam {n}")
        errors = [flooder.expect_response("error") for _ in range(4)]
        assert "muted" in errors[2]["content"] and "muted" in errors[3]["content"]
        page = scrape(server.metrics_address)
    assert page.value("ktnchat_flood_refusals_total") == 4
    assert page.value("ktnchat_flood_mutes_total") == 1
    assert page.value("ktnchat_messages_stored_total") == 2
    assert page.value("ktnchat_requests_total", request="msg", outcome="ok") == 2
    assert page.value("ktnchat_requests_total", request="msg", outcome="error") == 4
    assert page.value("ktnchat_moderation_actions_total") == 0  # flood control is not one
