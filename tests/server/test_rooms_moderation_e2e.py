# Rooms, accounts, moderation, private messages and flood control over real sockets.
from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from ktnchat.service import ServiceConfig
from ktnchat.service.flood import FloodConfig
from ktnchat.storage import storage_from_url
from tests.compat.test_naive_clients import NaiveRun
from tests.helpers import NO_FLOOD, Peer, start_server, wait_until

SECRET = "correct-horse-battery-staple"


@pytest.fixture
def chat(server_factory):
    return server_factory(pace_interval=0.0, admin_secret=SECRET)


def history_texts(earlier: list) -> list:
    return [entry["content"] for entry in earlier]


def join(peer: Peer, room: str) -> list:
    """Join `room`; the earlier messages that came with it."""
    peer.send("join", room)
    peer.send("names")  # a marker after the room's earlier messages
    peer.expect(lambda r: r.get("event") == "joined" and r.get("room") == room)
    return peer.earlier_messages()


def register(peer: Peer, password: str) -> None:
    peer.send("register", password)
    peer.expect(lambda r: r.get("event") == "registered")


def test_two_rooms_chat_independently(chat) -> None:
    with Peer(chat.address) as a, Peer(chat.address) as b, Peer(chat.address) as c:
        for peer, name in ((a, "alice"), (b, "bob"), (c, "carol")):
            peer.login(name)
        a.send("create", "games chess and go")
        a.expect(lambda r: r.get("event") == "joined" and r.get("room") == "games")
        join(b, "games")
        a.send("msg", "in games")
        c.send("msg", "in lobby")
        assert b.expect_response("message")["content"] == "in games"
        assert c.expect_response("message")["content"] == "in lobby"
        assert a.expect_response("message")["content"] == "in games"
        a.send("names")
        assert a.expect(lambda r: "names" in r)["names"] == ["alice", "bob"]
        c.send("rooms")
        rooms = {r["name"]: r for r in c.expect(lambda r: "rooms" in r)["rooms"]}
        assert rooms["games"]["members"] == 2 and rooms["games"]["topic"] == "chess and go"
        assert rooms["lobby"]["members"] == 1
        assert not [r for r in c.unread() if r.get("content") == "in games"]


def test_a_removed_message_is_gone_for_later_logins(chat) -> None:
    with Peer(chat.address) as admin, Peer(chat.address) as spammer:
        admin.login("boss")
        admin.send("admin", SECRET)
        admin.expect(lambda r: r.get("event") == "admin")
        spammer.login("spammer")
        spammer.send("msg", "buy cheap watches")
        message_id = admin.expect_response("message", content="buy cheap watches")["id"]
        spammer.send("msg", "hello")
        admin.expect_response("message", content="hello")
        admin.send("remove", str(message_id))
        notice = spammer.expect(lambda r: r.get("event") == "removed")
        assert notice["deleted"] == [message_id]
        with Peer(chat.address) as later:
            assert history_texts(later.login("later")) == ["hello"]


def test_bans_rooms_and_messages_survive_a_restart_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    first = start_server(storage=storage_from_url(url), pace_interval=0.0, admin_secret=SECRET)
    try:
        with Peer(first.address) as owner, Peer(first.address) as troll:
            owner.login("olga")
            register(owner, "olga-password-1")
            owner.send("create", "books novels only")
            owner.expect(lambda r: r.get("event") == "joined")
            owner.send("msg", "welcome to books")
            owner.expect_response("message")
            troll.login("troll")
            join(troll, "books")
            owner.send("ban", "troll spoilers")
            troll.expect(lambda r: r.get("event") == "kicked")
    finally:
        first.shutdown()
    second = start_server(storage=storage_from_url(url), pace_interval=0.0, admin_secret=SECRET)
    try:
        with Peer(second.address) as troll, Peer(second.address) as reader:
            troll.login("TROLL")  # another case of the same name
            troll.send("join", "books")
            assert "banned from books" in troll.expect_response("error")["content"]
            reader.login("reader")
            reader.send("rooms")
            rooms = {r["name"]: r for r in reader.expect(lambda r: "rooms" in r)["rooms"]}
            assert rooms["books"]["owner"] == "olga" and rooms["books"]["topic"] == "novels only"
            assert history_texts(join(reader, "books")) == ["welcome to books"]
        with Peer(second.address) as impostor:
            impostor.send("login", "olga")
            assert "registered name" in impostor.expect_response("error")["content"]
            impostor.send("login", "olga wrong-password")
            assert "Wrong password" in impostor.expect_response("error")["content"]
        with Peer(second.address) as owner:
            owner.send("login", "olga olga-password-1")
            owner.expect_response("info", username="olga")
            join(owner, "books")
            owner.send("unban", "troll")
            owner.expect_response("info")
    finally:
        second.shutdown()


def test_an_impostor_gets_no_privileges_from_a_name(chat) -> None:
    with Peer(chat.address) as owner:
        owner.login("olga")
        register(owner, "olga-password-1")
        owner.send("create", "club")
        owner.expect(lambda r: r.get("event") == "joined")
        owner.send("logout")
        owner.expect_response("info", username="olga")
    with Peer(chat.address) as impostor, Peer(chat.address) as victim:
        victim.login("victim")
        join(victim, "club")
        impostor.send("login", "olga")  # refused: the name is registered
        assert "registered name" in impostor.expect_response("error")["content"]
        impostor.send("login", "Olga")  # case variants are the same name
        assert "registered name" in impostor.expect_response("error")["content"]
        impostor.login("olgaa")
        join(impostor, "club")
        impostor.send("kick", "victim")
        assert "moderators of club" in impostor.expect_response("error")["content"]
        impostor.send("admin", "guess-the-secret")
        assert "not the admin secret" in impostor.expect_response("error")["content"]
        impostor.send("gban", "victim")
        assert impostor.expect_response("error")
        victim.send("msg", "still here")
        victim.expect_response("message", content="still here")


def test_server_ban_disconnects_and_refuses_login(chat) -> None:
    with Peer(chat.address) as admin, Peer(chat.address) as mallory:
        admin.login("boss")
        admin.send("admin", SECRET)
        admin.expect(lambda r: r.get("event") == "admin")
        mallory.login("mallory")
        admin.send("gban", "mallory spam")
        assert "banned from this server" in mallory.expect_response("error")["content"]
        mallory.wait_eof()
        wait_until(lambda: chat.service.presence.holder("mallory") is None)
    with Peer(chat.address) as again:
        again.send("login", "Mallory")
        assert "banned" in again.expect_response("error")["content"]


def test_a_flooder_is_limited_while_others_chat(server_factory) -> None:
    flood = FloodConfig(message_rate=2.0, message_burst=5.0, strikes_to_mute=3, mute_seconds=60)
    server = server_factory(pace_interval=0.0, service_config=ServiceConfig(flood=flood))
    with Peer(server.address) as flooder, Peer(server.address) as calm:
        flooder.login("flooder")
        calm.login("calm")
        flooder.send_raw(
            b"".join(
                json.dumps({"request": "msg", "content": f"spam {i}"}).encode() for i in range(40)
            )
        )
        errors = [flooder.expect_response("error") for _ in range(35)]
        assert "Slow down" in errors[0]["content"]
        assert any("muted" in e["content"] for e in errors)
        delivered = [calm.expect_response("message")["content"] for _ in range(5)]
        assert delivered == [f"spam {i}" for i in range(5)]  # only the burst got through
        calm.send("msg", "I can still talk")
        assert calm.expect_response("message")["content"] == "I can still talk"
        assert not [r for r in calm.unread() if str(r.get("content", "")).startswith("spam")]


def test_a_naive_first_word_client_can_join_and_sendto(server_factory) -> None:
    chat = server_factory()  # default pacing: the naive client reads one object per recv
    with Peer(chat.address) as bob:
        bob.login("bob")
        bob.send("create", "games")
        bob.expect(lambda r: r.get("event") == "joined")
        naive = NaiveRun(
            sys.executable,
            chat.address[1],
            [
                {"request": "login", "content": "alice"},
                {"wait": {"response": "info", "username": "alice"}},
                {"request": "join", "content": "games"},
                {"wait": {"response": "info", "event": "joined"}},
                {"request": "msg", "content": "hi games"},
                {"wait": {"response": "message", "content": "hi games"}},
                {"request": "sendto", "content": "bob psst"},
                {"wait": {"response": "message", "private": True}},
                {"request": "logout"},
                {"wait": {"response": "info", "username": "alice"}},
            ],
        )
        received = naive.finish()
        assert bob.expect_response("message", content="hi games")
        private = bob.expect(lambda r: r.get("private") is True)
        assert (private["sender"], private["content"], private["to"]) == ("alice", "psst", "bob")
        assert any(r.get("event") == "joined" and r.get("room") == "games" for r in received)


def test_flood_limits_do_not_apply_to_tests_that_turn_them_off() -> None:
    assert NO_FLOOD.flood.enabled is False
    assert replace(NO_FLOOD, max_rooms=3).flood.enabled is False
