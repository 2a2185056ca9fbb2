# The 2014 edition (seed 000) on the same port as 2017: shapes and error strings exactly as
# the seed writes them, and 2014 and 2017 clients chatting together.
from __future__ import annotations

import json
from typing import Any, Dict

import pytest

from ktnchat.protocol.edition2014 import BacklogEncoding
from tests.helpers import Peer


def send(peer: Peer, obj: Dict[str, Any]) -> None:
    peer.send_raw(json.dumps(obj).encode())


def next_obj(peer: Peer) -> Dict[str, Any]:
    return peer.expect(lambda r: True)


@pytest.fixture
def chat(server_factory):
    return server_factory(pace_interval=0.0)


def test_2014_login_answers_with_username_and_json_string_backlog(chat) -> None:
    """The default backlog: each entry a JSON string of a message object, which all 3
    measured 2014 clients survive (plain strings kill the one that decodes entries)."""
    with Peer(chat.address) as modern:
        modern.login("modern")
        modern.send("msg", "from 2017")
        stamp = modern.expect_response("message")["timestamp"]
        with Peer(chat.address) as old:
            send(old, {"request": "login", "username": "old_timer"})
            answer = next_obj(old)
            assert answer["response"] == "login" and answer["username"] == "old_timer"
            assert [json.loads(entry) for entry in answer["messages"]] == [
                {"response": "message", "message": f"modern said @ {stamp}: from 2017"}
            ]


def test_2014_errors_are_the_seeds_strings(chat) -> None:
    with Peer(chat.address) as taken, Peer(chat.address) as old:
        taken.login("alice")
        send(old, {"request": "message", "message": "too early"})
        assert next_obj(old) == {"response": "message", "error": "You are not logged in!"}
        send(old, {"request": "logout"})
        assert next_obj(old) == {"response": "logout", "error": "Not logged in!", "username": None}
        send(old, {"request": "login", "username": "bad!"})
        assert next_obj(old) == {
            "response": "login",
            "error": "Invalid username!",
            "username": "bad!",
        }
        send(old, {"request": "login", "username": "ALICE"})
        assert next_obj(old) == {
            "response": "login",
            "error": "Name already taken!",
            "username": "ALICE",
        }


def test_2014_and_2017_clients_see_each_others_messages_names_and_logouts(chat) -> None:
    with Peer(chat.address) as modern, Peer(chat.address) as old:
        modern.login("modern")
        send(old, {"request": "login", "username": "old_timer"})
        assert next_obj(old)["response"] == "login"
        assert "old_timer joined" in modern.expect(lambda r: r.get("event") == "join")["content"]

        send(old, {"request": "message", "message": "hello from 2014"})
        echo = next_obj(old)
        got = modern.expect_response("message")
        assert (got["sender"], got["content"]) == ("old_timer", "hello from 2014")
        assert echo == {
            "response": "message",
            "message": f"old_timer said @ {got['timestamp']}: hello from 2014",
        }
        modern.send("msg", "hello from 2017")
        stamp = modern.expect_response("message")["timestamp"]
        assert next_obj(old) == {
            "response": "message",
            "message": f"modern said @ {stamp}: hello from 2017",
        }

        modern.send("names")
        assert modern.expect(lambda r: "names" in r)["names"] == ["modern", "old_timer"]
        send(old, {"request": "listUsers"})
        # The word exactly as sent: a client that sent listUsers waits for listUsers.
        assert next_obj(old) == {"response": "listUsers", "users": ["modern", "old_timer"]}
        send(old, {"request": "users"})
        assert next_obj(old) == {"response": "users", "users": ["modern", "old_timer"]}

        modern.send("logout")
        modern.expect_response("info", username="modern")
        assert next_obj(old) == {"response": "message", "message": "modern left the chat"}
        send(old, {"request": "logout"})
        assert next_obj(old) == {"response": "logout", "username": "old_timer"}


def test_underscores_only_for_2014_logins(chat) -> None:
    with Peer(chat.address) as modern:
        modern.send("login", "new_style")
        assert modern.expect_response("error")["code"] == "invalid_username"
        modern.login("modern")
        with Peer(chat.address) as old:
            send(old, {"request": "login", "username": "old_style"})
            assert next_obj(old)["username"] == "old_style"
            modern.send("sendto", "old_style hi there")  # 2017 users can still reach them
            modern.expect(lambda r: r.get("private") is True)
            assert next_obj(old)["message"].startswith("modern (privately) said @")


def test_plain_backlog_encoding(server_factory) -> None:
    server = server_factory(pace_interval=0.0, backlog_encoding=BacklogEncoding.PLAIN)
    with Peer(server.address) as modern, Peer(server.address) as old:
        modern.login("modern")
        modern.send("msg", "kept")
        stamp = modern.expect_response("message")["timestamp"]
        send(old, {"request": "login", "username": "old"})
        assert next_obj(old)["messages"] == [f"modern said @ {stamp}: kept"]


def test_a_2014_client_reading_with_one_recv_gets_one_object_per_read(server) -> None:
    """Default pacing: the login answer and the next broadcast arrive in separate reads."""
    with Peer(server.address) as old, Peer(server.address) as modern:
        send(old, {"request": "login", "username": "solo"})
        assert next_obj(old)["response"] == "login"
        modern.login("modern")
        old.expect(lambda r: "joined" in r.get("message", ""))
        assert len(old.segments) == len(old.received)
