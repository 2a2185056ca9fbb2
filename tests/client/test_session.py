# The session's memory of rooms and messages, fed events directly (no sockets).
from __future__ import annotations

from typing import Any, List, Optional

from ktnchat.client.render import Rendered
from ktnchat.client.session import ClientSession, Incoming
from ktnchat.protocol.lenient import ServerEvent, events_from_value


def server(content: str, **extra: Any) -> List[ServerEvent]:
    return events_from_value(
        {"timestamp": "12:00:00", "sender": "server", "response": "info", "content": content}
        | extra
    )


def message(sender: str, text: str, **extra: Any) -> List[ServerEvent]:
    return events_from_value(
        {"timestamp": "12:00:00", "sender": sender, "response": "message", "content": text} | extra
    )


class Fed:
    def __init__(self) -> None:
        self.shown: List[Rendered] = []
        self.session = ClientSession("127.0.0.1", 1, self.shown.append)

    def feed(self, events: List[ServerEvent]) -> List[str]:
        start = len(self.shown)
        for event in events:
            self.session.handle_item(Incoming(0, event))
        return [rendered.text for rendered in self.shown[start:]]


def test_room_follows_login_joined_kicked_and_logout() -> None:
    fed = Fed()
    session = fed.session

    def room() -> Optional[str]:
        return session.room

    fed.feed(server("Login successful", username="alice", room="lobby", features=[]))
    assert room() == "lobby"
    shown = fed.feed(
        server("You joined games", event="joined", room="games", topic="", owner="bob")
        + events_from_value(
            {"response": "history", "content": [{"sender": "bob", "content": "hi", "id": 1}]}
        )
    )
    assert shown == ["12:00:00 * [games] You joined games", "[games] [history] bob: hi"]
    assert room() == "games" and {"lobby", "games"} <= session.rooms
    fed.feed(server("bob joined games", event="join", username="bob", room="games"))
    assert room() == "games"
    fed.feed(server("You were kicked from games", event="kicked", room="games", by="bob"))
    assert room() is None
    fed.feed(server("You are in lobby", event="joined", room="lobby"))
    assert room() == "lobby"
    fed.feed(server("Users in lobby: alice", names=["alice"], room="lobby"))
    assert room() == "lobby"
    session.handle_line("logout")  # not connected: a warning, but the room is forgotten
    assert room() is None


def test_rooms_list_replaces_the_room_names() -> None:
    fed = Fed()
    fed.session.rooms.update({"gone"})
    listing = [{"name": "lobby", "members": 1}, {"name": "games", "members": 0}, {"x": 1}]
    fed.feed(server("Rooms:\nlobby (1)\ngames (0)", rooms=listing))
    assert fed.session.rooms == {"lobby", "games"}
    assert fed.session.known_names(rooms=True) == ["games", "lobby"]


def test_removal_names_a_message_shown_before_and_forgets_it() -> None:
    fed = Fed()
    fed.feed(message("mallory", "buy cheap stuff", id=42) + message("bob", "psst", private=True))
    removed = server(
        "A message from mallory was removed by carol", event="removed", deleted=[42], by="carol"
    )
    assert fed.feed(removed) == [
        '12:00:00 * message #42 (mallory: "buy cheap stuff") was removed by carol'
    ]
    assert fed.feed(removed) == ["12:00:00 * message #42 was removed by carol"]


def test_private_message_reveals_the_recipient() -> None:
    fed = Fed()
    shown = fed.feed(message("alice", "psst", private=True, to="bob"))
    assert shown == ["12:00:00 [private] alice -> bob: psst"]
    assert fed.session.usernames == {"alice", "bob"}
