# Room broadcasts held for the pass (ktnchat/server/fanout.py) against a real server:
# requests sent in one write are answered in their order among the pass's broadcasts; a
# reader who leaves or joins in the middle of a pass gets exactly what came while it was a
# member; paced, 2014-edition and streaming readers of one burst each get all of it, in
# order, in the framing they speak.
from __future__ import annotations

import json
from typing import Any, Dict, List

from tests.helpers import Peer


def request(word: str, content: Any = None) -> bytes:
    return json.dumps({"request": word, "content": content}).encode()


def texts(objects: List[Dict[str, Any]]) -> List[str]:
    return [o["content"] for o in objects if o.get("response") == "message"]


def label(obj: Dict[str, Any]) -> str:
    """A message's text, "names" for the names answer, "error" for an error, else ""."""
    if obj.get("response") == "message":
        return str(obj["content"])
    if "names" in obj:
        return "names"
    return "error" if obj.get("response") == "error" else ""


def read_until(peer: Peer, content: str) -> List[Dict[str, Any]]:
    """Everything `peer` gets up to and including the message `content`, in order."""
    start = peer.cursor
    peer.expect(lambda r: r.get("response") == "message" and r.get("content") == content)
    return peer.received[start : peer.cursor]


def synced(peer: Peer) -> List[Dict[str, Any]]:
    """What `peer` got before the answer to a `names` it sends now (the server handles a
    connection's requests in order, so anything of an earlier pass is in there)."""
    start = peer.cursor
    peer.send("names")
    peer.expect(lambda r: r.get("response") == "info" and "names" in r)
    return peer.received[start : peer.cursor]


def test_answers_keep_their_place_among_the_broadcasts_of_one_write(server: Any) -> None:
    with Peer(server.address, stream=True) as alice, Peer(server.address, stream=True) as bob:
        alice.login("alice")
        bob.login("bob")
        alice.send_raw(
            request("msg", "one")
            + request("names")
            + request("msg", "two")
            + request("nosuchrequest")
            + request("msg", "three")
        )
        got = read_until(alice, "three")
        kinds = [label(o) for o in got if label(o)]
        assert kinds == ["one", "names", "two", "error", "three"]
        assert texts(read_until(bob, "three"))[-3:] == ["one", "two", "three"]


def test_a_member_who_leaves_mid_pass_gets_what_came_before_and_nothing_after(
    server: Any,
) -> None:
    with Peer(server.address, stream=True) as alice, Peer(
        server.address, stream=True
    ) as bob, Peer(server.address, stream=True) as carol:
        alice.login("alice")
        bob.login("bob")
        carol.login("carol")
        carol.send("create", "den")
        carol.expect(lambda r: r.get("event") == "joined")
        # One write: a message to the lobby, a move to den, a message to den.
        alice.send_raw(
            request("msg", "lobby-1") + request("join", "den") + request("msg", "den-1")
        )
        mine = read_until(alice, "den-1")
        order = [
            o["content"] if o.get("response") == "message" else "joined"
            for o in mine
            if o.get("response") == "message" or o.get("event") == "joined"
        ]
        assert order == ["lobby-1", "joined", "den-1"]

        read_until(bob, "lobby-1")
        assert "den-1" not in texts(synced(bob))
        carol_saw = texts(read_until(carol, "den-1")) + texts(synced(carol))
        assert carol_saw == ["den-1"]


def test_every_kind_of_reader_gets_a_whole_burst_in_order(server_factory: Any) -> None:
    server = server_factory(pace_interval=0.002)
    lines = [f"line {i}" for i in range(40)]
    with Peer(server.address, stream=True) as sender, Peer(
        server.address, stream=True
    ) as streaming, Peer(server.address) as paced, Peer(server.address) as old:
        sender.login("sender")
        streaming.login("streaming")
        paced.login("paced")
        old.send_raw(json.dumps({"request": "login", "username": "old"}).encode())
        old.expect(lambda r: r.get("response") == "login")
        sender.send_raw(b"".join(request("msg", line) for line in lines))

        assert texts(read_until(streaming, lines[-1]))[-40:] == lines
        # Paced (one object per write; tests/compat checks what naive readers make of it).
        assert texts(read_until(paced, lines[-1]))[-40:] == lines
        said = old.expect(lambda r: str(r.get("message", "")).endswith(lines[-1]))
        assert said["response"] == "message"
        got = [o["message"] for o in old.received if "said" in str(o.get("message", ""))]
        assert [text.rsplit(": ", 1)[1] for text in got][-40:] == lines
