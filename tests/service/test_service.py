# ChatService rules with in-memory storage and a fixed clock: no sockets, no threads.
from __future__ import annotations

import time
from typing import Any, List

import pytest

from ktnchat.protocol import Request, Response
from ktnchat.service import ChatService, Outcome, ServiceConfig, Session
from ktnchat.storage import MemoryStorage, StorageError, StoredMessage

FIXED = time.mktime((2017, 3, 10, 12, 34, 56, 0, 0, -1))


def make_service(**config: Any) -> ChatService:
    return ChatService(MemoryStorage(), ServiceConfig(**config), clock=lambda: FIXED)


def kinds(outcome: Outcome) -> List[str]:
    return [r.kind for r in outcome.replies]


def only_error(outcome: Outcome) -> str:
    assert kinds(outcome) == ["error"] and not outcome.broadcasts
    return outcome.replies[0].content


def logged_in(service: ChatService, name: str) -> Session:
    session = service.open_session(f"peer-{name}")
    outcome = service.handle(session, Request("login", name))
    assert kinds(outcome) == ["info", "history"], outcome
    return session


@pytest.fixture
def service() -> ChatService:
    return make_service()


def test_timestamp_is_a_string_in_the_configured_format(service: ChatService) -> None:
    assert service.timestamp() == "2017-03-10 12:34:56"
    utc = make_service(utc=True, timestamp_format="%H:%M")
    assert utc.timestamp(0) == "00:00"


@pytest.mark.parametrize("word", ["logout", "msg", "names", "history"])
@pytest.mark.parametrize("content", [None, "", "None", "hello", 5])
def test_only_login_and_help_before_login(service: ChatService, word: str, content: Any) -> None:
    session = service.open_session("p")
    text = only_error(service.handle(session, Request(word, content)))
    assert "log in" in text and word in text


@pytest.mark.parametrize("content", [None, "", "None", "stale text", 7])
def test_help_works_before_and_after_login_whatever_the_content(
    service: ChatService, content: Any
) -> None:
    session = service.open_session("p")
    before = service.handle(session, Request("help", content))
    assert kinds(before) == ["info"] and "login <username>" in before.replies[0].content
    assert "msg <message>" not in before.replies[0].content
    service.handle(session, Request("login", "alice"))
    after = service.handle(session, Request("help", content))
    text = "".join(r.content for r in after.replies)
    assert "msg <message>" in text and "names" in text and "logout" in text


def test_login_answers_info_then_history_and_tells_the_others(service: ChatService) -> None:
    alice = logged_in(service, "alice")
    bob = service.open_session("peer-bob")
    outcome = service.handle(bob, Request("login", "bob"))
    info, history = outcome.replies
    assert info.kind == "info" and info.extra["username"] == "bob"
    assert info.extra["server"].startswith("ktnchat/")
    assert history.kind == "history" and history.content == ()
    [notice] = outcome.broadcasts
    assert list(notice.recipients or ()) == [alice]
    assert notice.response.content == "bob joined the chat"
    assert notice.response.extra["event"] == "join"


@pytest.mark.parametrize(
    "name",
    ["", "   ", "al ice", "alice!", "æøå", "a_b", "a-b", "x" * 21, "server", "SERVER", None, 5],
)
def test_invalid_usernames_are_refused(service: ChatService, name: Any) -> None:
    session = service.open_session("p")
    assert "Invalid username" in only_error(service.handle(session, Request("login", name)))
    assert not session.logged_in


@pytest.mark.parametrize("name", ["a", "Alice", "bob42", "X" * 20, "  padded  "])
def test_valid_usernames(service: ChatService, name: str) -> None:
    session = service.open_session("p")
    service.handle(session, Request("login", name))
    assert session.username == name.strip()


def test_taken_name_is_refused_never_hijacked_case_insensitively(service: ChatService) -> None:
    alice = logged_in(service, "alice")
    for attempt in ("alice", "ALICE", "Alice"):
        intruder = service.open_session("p2")
        assert "taken" in only_error(service.handle(intruder, Request("login", attempt)))
    assert service.presence.holder("alice") is alice


def test_login_twice_is_refused(service: ChatService) -> None:
    alice = logged_in(service, "alice")
    assert "Already logged in" in only_error(service.handle(alice, Request("login", "other")))
    assert alice.username == "alice"


def test_msg_is_broadcast_to_everyone_including_the_sender(service: ChatService) -> None:
    alice, bob = logged_in(service, "alice"), logged_in(service, "bob")
    outcome = service.handle(alice, Request("msg", "hello"))
    assert outcome.replies == []
    [broadcast] = outcome.broadcasts
    assert set(broadcast.recipients) == {alice, bob} and broadcast.exclude is None
    message = broadcast.response
    assert (message.kind, message.sender, message.content) == ("message", "alice", "hello")
    assert message.timestamp == "2017-03-10 12:34:56" and message.extra["id"] == 1


@pytest.mark.parametrize("content", [None, "", "   ", 5, ["list"], {"a": 1}])
def test_msg_without_text_is_refused(service: ChatService, content: Any) -> None:
    alice = logged_in(service, "alice")
    only_error(service.handle(alice, Request("msg", content)))


def test_msg_length_limit() -> None:
    service = make_service(max_message_chars=10)
    alice = logged_in(service, "alice")
    assert "too long" in only_error(service.handle(alice, Request("msg", "x" * 11)))
    assert service.handle(alice, Request("msg", "x" * 10)).broadcasts


def test_control_characters_are_scrubbed_but_newlines_kept(service: ChatService) -> None:
    alice = logged_in(service, "alice")
    outcome = service.handle(alice, Request("msg", "red\x1b[31m\x07\nnext\tline\x9b"))
    text = outcome.broadcasts[0].response.content
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
    assert "\nnext\tline" in text


def test_history_on_login_is_the_recent_messages_oldest_first() -> None:
    service = make_service(history_on_login=3)
    alice = logged_in(service, "alice")
    for i in range(5):
        service.handle(alice, Request("msg", f"m{i}"))
    bob = service.open_session("p")
    history = service.handle(bob, Request("login", "bob")).replies[1]
    assert [m.content for m in history.content] == ["m2", "m3", "m4"]
    assert [m.extra["id"] for m in history.content] == [3, 4, 5]
    assert all(m.sender == "alice" and m.kind == "message" for m in history.content)


@pytest.mark.parametrize(("content", "count"), [(None, 4), ("2", 2), (3, 3), ("junk", 4), (0, 1)])
def test_history_request(content: Any, count: int) -> None:
    service = make_service(history_on_login=4, history_max=10)
    alice = logged_in(service, "alice")
    for i in range(6):
        service.handle(alice, Request("msg", f"m{i}"))
    [history] = service.handle(alice, Request("history", content)).replies
    assert len(history.content) == count


def test_names_is_a_string_with_the_list_as_an_extra_key(service: ChatService) -> None:
    alice = logged_in(service, "alice")
    logged_in(service, "Bob")
    [info] = service.handle(alice, Request("names", "stale")).replies
    assert info.kind == "info" and isinstance(info.content, str)
    assert "alice" in info.content and "Bob" in info.content
    assert info.extra["names"] == ["alice", "Bob"]


def test_long_names_list_is_split_into_small_infos() -> None:
    service = make_service(text_chunk_chars=100)
    sessions = [logged_in(service, f"user{i:03d}") for i in range(40)]
    replies = service.handle(sessions[0], Request("names")).replies
    assert len(replies) > 1 and all(len(r.content) <= 110 for r in replies)
    listed = ", ".join(r.content.split(": ", 1)[1] for r in replies).split(", ")
    assert listed == [f"user{i:03d}" for i in range(40)]


def test_logout_frees_the_name_keeps_the_session_and_tells_the_others(
    service: ChatService,
) -> None:
    alice, bob = logged_in(service, "alice"), logged_in(service, "bob")
    outcome = service.handle(alice, Request("logout", "None"))
    assert kinds(outcome) == ["info"] and not alice.logged_in
    assert list(outcome.broadcasts[0].recipients or ()) == [bob]
    assert outcome.broadcasts[0].response.extra["event"] == "leave"
    assert service.handle(alice, Request("msg", "hi")).replies[0].kind == "error"
    again = service.handle(alice, Request("login", "alice"))
    assert kinds(again) == ["info", "history"]


def test_closing_a_session_frees_its_name_at_once(service: ChatService) -> None:
    alice, bob = logged_in(service, "alice"), logged_in(service, "bob")
    outcome = service.close_session(alice, "connection reset")
    assert "connection reset" in outcome.broadcasts[0].response.content
    assert list(outcome.broadcasts[0].recipients or ()) == [bob]
    assert service.presence.holder("alice") is None
    assert service.close_session(alice, "again") == Outcome()  # idempotent
    newcomer = service.open_session("p")
    assert kinds(service.handle(newcomer, Request("login", "alice"))) == ["info", "history"]


def test_join_and_leave_notices_stop_in_big_rooms() -> None:
    service = make_service(announce_max_members=3)
    logged_in(service, "a")
    logged_in(service, "b")
    third = service.handle(service.open_session("p"), Request("login", "c"))
    assert third.broadcasts
    fourth = service.handle(service.open_session("p"), Request("login", "d"))
    assert fourth.broadcasts == []


def test_unknown_request_names_it_and_points_at_help(service: ChatService) -> None:
    session = service.open_session("p")
    text = only_error(service.handle(session, Request("dance", None)))
    assert "dance" in text and "help" in text


def test_stream_switch(service: ChatService) -> None:
    session = service.open_session("p")
    on = service.handle(session, Request("stream", "on"))
    assert on.stream is True and on.replies[0].extra["stream"] is True
    off = service.handle(session, Request("stream", "off"))
    assert off.stream is False


class FailingStorage(MemoryStorage):
    """A store that refuses writes while `down` is set."""

    down = False

    def append_message(self, room: str, sender: str, text: str, created: float) -> StoredMessage:
        if self.down:
            raise StorageError("disk on fire")
        return super().append_message(room, sender, text, created)


def test_a_message_the_store_refused_is_not_broadcast() -> None:
    storage = FailingStorage()
    service = ChatService(storage, clock=lambda: FIXED)
    alice = logged_in(service, "alice")
    storage.down = True
    text = only_error(service.handle(alice, Request("msg", "lost?")))
    assert "message not sent" in text.lower()
    storage.down = False
    assert service.handle(alice, Request("msg", "back")).broadcasts[0].response.extra["id"] == 1


def test_every_response_is_valid_on_the_wire(service: ChatService) -> None:
    alice = logged_in(service, "alice")
    replies: List[Response] = []
    for request in [Request("names"), Request("help"), Request("history"), Request("x")]:
        replies += service.handle(alice, request).replies
    assert all(isinstance(r.timestamp, str) and r.sender == "server" for r in replies)


def test_a_message_of_only_whitespace_is_refused_whatever_the_whitespace(service) -> None:
    alice = logged_in(service, "alice")
    spaces = [chr(c) for c in range(0x110000) if chr(c).isspace()]
    assert " " in spaces and "\u3000" in spaces and "\x1c" in spaces  # Unicode's, not ASCII's
    for space in spaces:
        assert only_error(service.handle(alice, Request("msg", space * 3))).startswith("Empty")
    assert only_error(service.handle(alice, Request("msg", ""))).startswith("Empty")
    sent = service.handle(alice, Request("msg", " \u3000x "))
    assert [b.response.content for b in sent.broadcasts] == [" \u3000x "]
