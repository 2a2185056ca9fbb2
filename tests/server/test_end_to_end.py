# The server over real loopback sockets: real threads, real kernels, no mocks, no sleeps.
from __future__ import annotations

import gc
import json
import logging
import os
import socket
import struct
import time
from dataclasses import replace

import pytest

from ktnchat.protocol import HistoryDelivery
from ktnchat.server.connection import Connection
from tests.helpers import NO_FLOOD, Peer, wait_until


@pytest.fixture
def fast(server_factory):
    """A server whose clients all stream (pacing off), for tests about semantics."""
    return server_factory(pace_interval=0.0)


def messages_of(history_objects):
    out = []
    for obj in history_objects:
        out += [json.loads(item) for item in obj["content"]]
    return out


def test_three_clients_chat(fast) -> None:
    peers = [Peer(fast.address) for _ in range(3)]
    try:
        for name, peer in zip(("alice", "bob", "carol"), peers):
            peer.login(name)
        for name, peer in zip(("alice", "bob", "carol"), peers):
            peer.send("msg", f"hi from {name}")
            for receiver in peers:
                got = receiver.expect_response("message")
                assert (got["sender"], got["content"]) == (name, f"hi from {name}")
                assert isinstance(got["timestamp"], str) and isinstance(got["id"], int)
    finally:
        for peer in peers:
            peer.close()


def test_login_history_holds_earlier_messages_in_order(fast) -> None:
    with Peer(fast.address) as alice:
        alice.login("alice")
        for i in range(30):
            alice.send("msg", f"message {i}")
        for i in range(30):
            alice.expect_response("message", content=f"message {i}")
        sent = [r for r in alice.received if r.get("response") == "message"]
        with Peer(fast.address) as bob:  # has not said `stream on`: ordinary messages
            bob.send("login", "bob")
            bob.expect_response("info", username="bob")
            replayed = [bob.expect_response("message") for _ in range(30)]
            assert all(r["history"] is True for r in replayed)
            assert [{k: v for k, v in r.items() if k != "history"} for r in replayed] == sent
            bob.send("msg", "live")  # after the earlier ones, and not marked
            live = bob.expect_response("message")
            assert live["content"] == "live" and "history" not in live
        with Peer(fast.address, stream=True) as carol:  # said `stream on`: history responses
            carol.send("login", "carol")
            carol.expect_response("info", username="carol")
            objects = [carol.expect_response("history")]
            while len(messages_of(objects)) < 31:
                objects.append(carol.expect_response("history"))
            assert messages_of(objects) == [*sent, live]


def test_a_stream_key_on_login_brings_the_history_response(fast) -> None:
    """{"request":"login","content":…,"stream":"on"}: streaming before the login is handled,
    so the login's earlier messages come as a `history` response (as our client asks)."""
    with Peer(fast.address) as alice:
        alice.login("alice")
        alice.send("msg", "earlier")
        alice.expect_response("message", content="earlier")
        with Peer(fast.address) as bob:
            bob.send_raw(b'{"request": "login", "content": "bob", "stream": "on"}')
            bob.expect_response("info", username="bob")
            [entry] = messages_of([bob.expect_response("history")])
            assert entry["content"] == "earlier"
            assert not [r for r in bob.received if r.get("history") is True]


def test_history_delivery_history_keeps_the_seeds_shape(server_factory) -> None:
    server = server_factory(pace_interval=0.0, history_delivery=HistoryDelivery.HISTORY)
    with Peer(server.address) as alice, Peer(server.address) as bob:
        alice.login("alice")
        alice.send("msg", "earlier")
        alice.expect_response("message", content="earlier")
        bob.send("login", "bob")
        bob.expect_response("info", username="bob")
        [entry] = messages_of([bob.expect_response("history")])
        assert entry["content"] == "earlier"
        alice.send("msg", "live")
        bob.expect_response("message", content="live")
        assert not [r for r in bob.received if r.get("history") is True]


def test_names_lists_logged_in_users_as_a_string(fast) -> None:
    with Peer(fast.address) as alice, Peer(fast.address) as bob, Peer(fast.address) as anon:
        alice.login("alice")
        bob.login("bob")
        anon.send("help")
        anon.expect_response("info")
        alice.send("names", None)
        info = alice.expect(lambda r: "names" in r)
        assert info["response"] == "info" and isinstance(info["content"], str)
        assert "alice" in info["content"] and "bob" in info["content"]
        assert info["names"] == ["alice", "bob"]


def test_taken_and_invalid_names(fast) -> None:
    with Peer(fast.address) as alice, Peer(fast.address) as other:
        alice.login("alice")
        for name in ("alice", "ALICE", "bad name", "ærlig", "", "x" * 21):
            other.send("login", name)
            error = other.expect_response("error")
            assert error["sender"] == "server" and error["content"]
        other.login("bob")  # the same connection can still log in


def test_only_login_and_help_before_login(fast) -> None:
    with Peer(fast.address) as peer:
        for word in ("msg", "names", "logout", "history"):
            peer.send(word, "x")
            assert "log in" in peer.expect_response("error")["content"]
        peer.send("help", None)
        assert "login" in peer.expect_response("info")["content"]


def test_logout_keeps_the_connection_and_frees_the_name(fast) -> None:
    with Peer(fast.address) as alice, Peer(fast.address) as bob:
        alice.login("alice")
        bob.login("bob")
        alice.send("logout", "")
        alice.expect_response("info", username="alice")
        assert "alice left" in bob.expect(lambda r: r.get("event") == "leave")["content"]
        bob.send("logout")
        bob.expect_response("info", username="bob")
        bob.login("alice")  # the name is free
        alice.login("carol")  # the old connection still works


def test_unknown_request_and_bad_json_keep_the_connection_usable(fast) -> None:
    with Peer(fast.address) as peer:
        peer.send("dance", None)
        assert "dance" in peer.expect_response("error")["content"]
        peer.send_raw(b'{"request": "login", "content": }')
        assert "Invalid JSON" in peer.expect_response("error")["content"]
        peer.send_raw(b"[1, 2, 3]")
        peer.expect_response("error")
        peer.login("alice")


def test_two_requests_in_one_segment_and_one_split_across_segments(fast) -> None:
    with Peer(fast.address) as peer:
        peer.send_raw(b'{"request":"login","content":"alice"}{"request":"msg","content":"one"}\n')
        peer.expect_response("message", content="one")
        request = b'{"request": "msg", "content": "two"}'
        peer.send_raw(request[:11])
        peer.send_raw(request[11:])
        peer.expect_response("message", content="two")


def test_oversized_request_gets_an_error_then_a_clean_close(server_factory) -> None:
    server = server_factory(pace_interval=0.0, max_frame_bytes=1000)
    with Peer(server.address) as bystander, Peer(server.address) as peer:
        bystander.login("bystander")
        peer.login("big")
        peer.send("msg", "x" * 5000)
        assert "too large" in peer.expect_response("error")["content"]
        peer.wait_eof()
        bystander.expect(lambda r: r.get("event") == "leave")
        bystander.send("msg", "still here")
        bystander.expect_response("message", content="still here")


def test_binary_garbage_never_hurts_anyone_else(fast) -> None:
    rng = __import__("random").Random(1234)
    with Peer(fast.address) as alice:
        alice.login("alice")
        for _ in range(20):
            with socket.create_connection(fast.address) as vandal:
                vandal.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000))))
        alice.send("msg", "unbothered")
        alice.expect_response("message", content="unbothered")
    wait_until(lambda: fast.connection_count() == 0)


def hard_close(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed client's kernel would."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize("how", ["eof", "reset", "mid-frame", "mid-login"])
def test_abrupt_disconnect_frees_the_name_and_others_keep_chatting(fast, how) -> None:
    with Peer(fast.address) as alice:
        alice.login("alice")
        victim = Peer(fast.address)
        if how == "mid-login":
            victim.send_raw(b'{"request": "login", "cont')
        else:
            victim.login("victim")
        if how == "mid-frame":
            victim.send_raw(b'{"request": "msg", "content": "half')
        if how in ("reset", "mid-frame"):
            hard_close(victim.sock)
        else:
            victim.close()
        if how != "mid-login":
            alice.expect(lambda r: r.get("event") == "leave" and r["username"] == "victim")
        wait_until(lambda: fast.service.presence.holder("victim") is None)
        with Peer(fast.address) as again:
            again.login("victim")
            alice.send("msg", "after")
            alice.expect_response("message", content="after")
            again.expect_response("message", content="after")


def test_a_client_that_never_reads_is_dropped_and_others_get_everything(
    server_factory, caplog
) -> None:
    server = server_factory(
        pace_interval=0.0, max_outbox_bytes=64 * 1024, send_buffer_bytes=32 * 1024
    )
    caplog.set_level(logging.WARNING, logger="ktnchat.server")
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(server.address)
    stalled.sendall(b'{"request": "login", "content": "sleepy"}')
    with Peer(server.address) as alice, Peer(server.address) as bob:
        alice.login("alice")
        bob.login("bob")
        text = "x" * 200
        for i in range(3000):  # ~0.7 MB to every reader: far past the stalled one's buffers
            alice.send_raw(json.dumps({"request": "msg", "content": f"{i} {text}"}).encode())
            if i % 100 == 99:  # alice and bob read as they go; only `sleepy` never reads
                alice.expect_response("message", content=f"{i} {text}")
                bob.expect_response("message", content=f"{i} {text}")
        got = [r for r in bob.received if r.get("response") == "message"]
        assert [int(r["content"].split()[0]) for r in got] == list(range(3000))
        wait_until(lambda: server.service.presence.holder("sleepy") is None)
    stalled.close()
    assert any("sleepy" in r.getMessage() and "dropped" in r.getMessage() for r in caplog.records)


def test_default_server_sends_one_object_per_segment(server) -> None:
    """The naive-client guarantee: each object whole and alone in its own TCP segment."""
    with Peer(server.address) as writer:
        writer.send("stream", "on")
        writer.expect(lambda r: r.get("stream") is True)
        writer.login("writer")
        for i in range(50):
            writer.send("msg", f"history line {i} " + "y" * (i % 60))
        writer.expect_response("message", content="history line 49 " + "y" * 49)
    with Peer(server.address) as naive:
        naive.send("login", "naive")
        naive.expect_response("info", username="naive")
        replayed = [naive.expect_response("message", history=True) for _ in range(50)]
        naive.send("names")
        naive.expect(lambda r: "names" in r)
        assert [r["content"] for r in replayed][-1] == "history line 49 " + "y" * 49
        assert all(len(segment) <= 1024 for segment in naive.segments)
        assert [segment.count(b"\n") for segment in naive.segments] == [1] * len(naive.segments)
        assert len(naive.segments) == len(naive.received)


def test_stream_on_lifts_pacing_for_that_connection_only(server) -> None:
    with Peer(server.address, stream=True) as streamer, Peer(server.address) as naive:
        streamer.login("streamer")
        naive.login("naive")
        for i in range(20):
            streamer.send("msg", str(i))
        streamer.expect_response("message", content="19")
        naive.expect_response("message", content="19")
        assert len(naive.segments) == len(naive.received)  # still one object per segment


def test_several_io_threads_share_one_chat(server_factory) -> None:
    server = server_factory(pace_interval=0.0, io_threads=3)
    peers = [Peer(server.address) for _ in range(6)]
    try:
        for i, peer in enumerate(peers):
            peer.login(f"user{i}")
        for i, peer in enumerate(peers):
            peer.send("msg", f"from {i}")
        for peer in peers:  # order is per sender only when senders sit on different loops
            got = {peer.expect_response("message")["content"] for _ in range(6)}
            assert got == {f"from {i}" for i in range(6)}
        hard_close(peers[0].sock)
        wait_until(lambda: server.service.presence.holder("user0") is None)
    finally:
        for peer in peers[1:]:
            peer.close()


def test_connection_cap_refuses_with_a_clear_error(server_factory) -> None:
    server = server_factory(pace_interval=0.0, max_connections=2)
    with Peer(server.address) as one, Peer(server.address) as two:
        one.login("one")
        two.login("two")
        with Peer(server.address) as three:
            assert "Server full" in three.expect_response("error")["content"]
            three.wait_eof()


def test_login_timeout_closes_silent_connections(server_factory) -> None:
    server = server_factory(pace_interval=0.0, login_timeout=0.2)
    with Peer(server.address) as silent:
        assert "No login" in silent.expect_response("error")["content"]
        silent.wait_eof()


def test_shutdown_tells_clients_and_closes(server_factory) -> None:
    server = server_factory(pace_interval=0.0)
    with Peer(server.address) as alice:
        alice.login("alice")
        server.shutdown()
        assert alice.expect_response("info")["event"] == "shutdown"
        alice.wait_eof()


def test_service_limits_reach_the_wire(server_factory) -> None:
    server = server_factory(
        pace_interval=0.0, service_config=replace(NO_FLOOD, max_message_chars=5)
    )
    with Peer(server.address) as alice:
        alice.login("alice")
        alice.send("msg", "toolong")
        assert "too long" in alice.expect_response("error")["content"]


def test_no_file_descriptors_leak(fast) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for i in range(30):
        with Peer(fast.address) as peer:
            peer.login(f"leak{i}")
    wait_until(lambda: fast.connection_count() == 0)
    wait_until(lambda: len(os.listdir("/proc/self/fd")) <= before)


def test_a_closed_connection_is_freed_at_once_not_left_to_the_cyclic_gc(fast) -> None:
    # With the cyclic collector off, a closed connection that sat in a reference cycle
    # would still be there; each way of leaving must free it by reference counting.
    gc.collect()
    gc.disable()
    try:
        for i in range(12):
            with Peer(fast.address) as peer:
                peer.login(f"freed{i}")
                peer.send("msg", "hello")
                peer.expect_response("message", content="hello")
                if i % 4 == 1:
                    peer.send("logout")
                    peer.expect_response("info")
                elif i % 4 == 2:
                    peer.send_raw(b'{"request": "msg", "cont')  # leaves mid-frame
                elif i % 4 == 3:  # a reset
                    peer.sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
        wait_until(lambda: fast.connection_count() == 0)
        live = gc.get_objects()
        assert [o for o in live if isinstance(o, Connection) and o.server is fast] == []
    finally:
        gc.enable()


def test_per_address_cap_refuses_with_a_clear_error(server_factory) -> None:
    server = server_factory(pace_interval=0.0, max_connections_per_address=2, cap_loopback=True)
    with Peer(server.address) as one, Peer(server.address) as two:
        one.login("one")
        two.login("two")
        with Peer(server.address) as three:
            assert (
                "Too many connections from your address"
                in (three.expect_response("error")["content"])
            )
            three.wait_eof()
        two.close()
        wait_until(lambda: server.connection_count() == 1)
        with Peer(server.address) as again:  # a freed slot can be used again
            again.login("again")


def test_loopback_is_exempt_from_the_per_address_cap_by_default(server_factory) -> None:
    server = server_factory(pace_interval=0.0, max_connections_per_address=1)
    with Peer(server.address) as one, Peer(server.address) as two:
        one.login("one")
        two.login("two")


def test_a_request_left_half_sent_is_closed_after_the_frame_timeout(server_factory) -> None:
    server = server_factory(pace_interval=0.0, frame_timeout=0.3)
    with Peer(server.address) as slow, Peer(server.address) as fine:
        fine.login("fine")
        slow.send_raw(b'{"request": "login", "con')  # ...and never the rest
        assert "incomplete" in slow.expect_response("error")["content"]
        slow.wait_eof()
        fine.send("msg", "unaffected")
        fine.expect_response("message", content="unaffected")


def test_a_quiet_client_that_sent_whole_requests_is_not_taken_for_slowloris(
    server_factory,
) -> None:
    server = server_factory(pace_interval=0.0, frame_timeout=0.2)
    with Peer(server.address) as quiet:
        # Two whole requests in one segment (not the one-object fast path), then silence.
        quiet.send_raw(b'{"request": "help"}{"request": "login", "content": "quiet"}\n')
        quiet.expect_response("info", username="quiet")
        # Two housekeeping passes (1 s apart) past the timeout: still connected and served.
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            assert not quiet._pump(deadline), "the server said something to a quiet client"
        assert not quiet.eof
        quiet.send("names")
        quiet.expect(lambda r: "names" in r)


def test_a_long_replay_never_tips_a_paced_client_into_streaming(server_factory) -> None:
    """A paced client asking for more history than half its backlog allowance gets the
    newest messages that fit, still one object per segment."""
    server = server_factory(pace_interval=0.002, pace_backlog=20)
    with Peer(server.address, stream=True) as writer:
        writer.login("writer")
        for i in range(30):
            writer.send("msg", f"line {i}")
        writer.expect_response("message", content="line 29")
    with Peer(server.address) as naive:
        naive.login("naive")
        naive.send("history", 30)
        naive.send("names")  # a marker after the replay
        earlier = naive.earlier_messages()
        assert [m["content"] for m in earlier] == [f"line {i}" for i in range(20, 30)]
        assert len(naive.segments) == len(naive.received)
