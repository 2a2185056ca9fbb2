# Private messages (sendto) and flood control through ChatService.handle, with a clock
# that moves only when the test advances it.
from __future__ import annotations

from typing import Any, Tuple

import pytest

from ktnchat.service import Session
from ktnchat.service.flood import FloodConfig
from tests.service.fixtures import Chat, audience, delivered, kinds, only_error

SLOW_DOWN = "Slow down: too many messages; try again in 0.2 s (message not sent)"


@pytest.fixture
def chat() -> Chat:
    return Chat()


# --- sendto ------------------------------------------------------------------------------


def test_sendto_reaches_the_target_and_the_sender_only(chat: Chat) -> None:
    alice, bob, carol = chat.login("alice"), chat.login("Bob"), chat.login("carol")
    chat.create(carol, "games")
    chat.join(bob, "games")  # the target may be in another room
    chat.clock.advance(3)
    outcome = chat.send(alice, "sendto", "BOB  psst, over here ")
    assert outcome.replies == [] and outcome.disconnect == []
    [broadcast] = outcome.broadcasts
    assert list(broadcast.recipients or ()) == [bob, alice]
    assert broadcast.to_user == "Bob" and broadcast.room == ""
    message = broadcast.response
    assert (message.kind, message.sender, message.content) == (
        "message",
        "alice",
        "psst, over here",
    )
    assert dict(message.extra) == {"private": True, "to": "Bob"}
    assert message.timestamp == "2017-03-10 12:34:59"
    assert delivered(outcome, carol) == []


def test_private_messages_are_not_stored_or_in_any_history(chat: Chat) -> None:
    alice, bob = chat.login("alice"), chat.login("bob")
    chat.send(alice, "sendto", "bob secret")
    chat.send(bob, "sendto", "alice reply")
    assert chat.storage.recent_messages("lobby", 100) == []
    assert chat.storage.get_message(1) is None
    assert chat.history(alice) == [] and chat.history(bob) == []
    assert chat.say(alice, "public") == 1  # no id was spent on them either
    late = chat.connect()
    assert [m.content for m in chat.send(late, "login", "late").replies[1].content] == ["public"]


def test_sendto_yourself_is_delivered_once(chat: Chat) -> None:
    alice = chat.login("alice")
    [broadcast] = chat.send(alice, "sendto", "ALICE note to self").broadcasts
    assert list(broadcast.recipients or ()) == [alice]


@pytest.mark.parametrize("target", ["bob", "nobody"])
def test_sendto_someone_offline_is_refused(chat: Chat, target: str) -> None:
    alice, bob = chat.login("alice"), chat.login("bob")
    chat.send(bob, "logout")
    text = only_error(chat.send(alice, "sendto", f"{target} hello"))
    assert text == f"{target} is not online; message not sent"


def test_sendto_a_closed_connection_is_refused(chat: Chat) -> None:
    alice, bob = chat.login("alice"), chat.login("bob")
    chat.service.close_session(bob, "reset")
    assert only_error(chat.send(alice, "sendto", "bob hi")) == "bob is not online; message not sent"


@pytest.mark.parametrize("content", [None, "", "bob", "bob    ", 7, ["bob", "hi"]])
def test_sendto_needs_a_user_and_a_message(chat: Chat, content: Any) -> None:
    alice = chat.login("alice")
    chat.login("bob")
    text = only_error(chat.send(alice, "sendto", content))
    assert text == "sendto needs a user and a message: sendto <user> <message>"


def test_sendto_body_is_scrubbed_and_limited() -> None:
    chat = Chat(max_message_chars=10)
    alice = chat.login("alice")
    chat.login("bob")
    assert "too long" in only_error(chat.send(alice, "sendto", "bob " + "x" * 11))
    [broadcast] = chat.send(alice, "sendto", "bob a\x1bb\nc").broadcasts
    assert broadcast.response.content == "a\ufffdb\nc"


def test_a_user_muted_in_the_room_may_still_send_privately(chat: Chat) -> None:
    owner, mod = chat.owned_room("den")
    bob = chat.login("bob")
    chat.join(bob, "den")
    chat.send(mod, "mute", "bob 0")
    assert "muted in den" in only_error(chat.send(bob, "msg", "hi all"))
    [broadcast] = chat.send(bob, "sendto", "olivia can you unmute me").broadcasts
    assert list(broadcast.recipients or ()) == [owner, bob]


# --- flood control: bursts ---------------------------------------------------------------


def test_a_burst_of_messages_then_slow_down(chat: Chat) -> None:
    alice, bob = chat.login("alice"), chat.login("bob")
    for i in range(10):
        assert chat.say(alice, f"m{i}") == i + 1
    assert only_error(chat.send(alice, "msg", "one too many")) == SLOW_DOWN
    assert len(chat.storage.recent_messages("lobby", 100)) == 10
    assert chat.say(bob, "others are not affected") == 11
    chat.clock.advance(0.25)  # 1.25 tokens at 5/s (a step the float clock adds exactly)
    assert chat.say(alice, "one more") == 12
    assert only_error(chat.send(alice, "msg", "and again")).startswith("Slow down")


def test_sendto_shares_the_message_bucket(chat: Chat) -> None:
    alice = chat.login("alice")
    chat.login("bob")
    for i in range(5):
        chat.say(alice, f"m{i}")
        assert chat.send(alice, "sendto", f"bob p{i}").broadcasts
    assert only_error(chat.send(alice, "sendto", "bob extra")) == SLOW_DOWN
    assert only_error(chat.send(alice, "msg", "extra")) == SLOW_DOWN


def test_a_burst_of_requests_of_any_kind_then_slow_down(chat: Chat) -> None:
    alice = chat.login("alice")  # the login was request 1 of 40
    for _ in range(39):
        assert kinds(chat.send(alice, "names")) == ["info"]
    text = only_error(chat.send(alice, "names"))
    assert text == "Slow down: too many requests; try again in 0.1 s"
    chat.clock.advance(0.0625)  # 1.25 tokens at 20/s
    assert kinds(chat.send(alice, "history")) == ["history"]


def test_request_flooding_is_refused_before_login_too(chat: Chat) -> None:
    session = chat.connect()
    for _ in range(40):
        chat.send(session, "help")
    assert only_error(chat.send(session, "login", "alice")).startswith("Slow down")
    assert not session.logged_in


def test_flood_control_can_be_turned_off() -> None:
    chat = Chat(flood=FloodConfig(enabled=False))
    alice = chat.login("alice")
    for i in range(100):
        assert chat.say(alice, f"m{i}") == i + 1


def test_the_flood_options_are_honoured() -> None:
    chat = Chat(flood=FloodConfig(message_rate=1.0, message_burst=2.0))
    alice = chat.login("alice")
    chat.say(alice, "1")
    chat.say(alice, "2")
    text = only_error(chat.send(alice, "msg", "3"))
    assert text == "Slow down: too many messages; try again in 1.0 s (message not sent)"


# --- flood control: sustained flooding ---------------------------------------------------


@pytest.fixture
def flooder(chat: Chat) -> Tuple[Session, Session, Session, Session]:
    """olivia owns den, mike moderates it, bob is a plain user; flo floods there."""
    owner, mod = chat.owned_room("den")
    bob, flo = chat.login("bob"), chat.login("flo")
    chat.join(bob, "den")
    chat.join(flo, "den")
    return owner, mod, bob, flo


def flood_until_muted(chat: Chat, flo: Session) -> Any:
    for i in range(10):
        chat.say(flo, f"spam {i}")
    for _ in range(4):
        assert only_error(chat.send(flo, "msg", "spam")) == SLOW_DOWN
    return chat.send(flo, "msg", "spam")  # the fifth refusal within 10 s


def test_sustained_flooding_mutes_and_tells_the_moderators(chat: Chat, flooder: Any) -> None:
    _, mod, bob, flo = flooder
    outcome = flood_until_muted(chat, flo)
    assert kinds(outcome) == ["error"]
    assert outcome.replies[0].content == "You are muted for 60 s for flooding; message not sent"
    assert audience(outcome, "flood") == {"olivia", "mike"}
    assert delivered(outcome, bob) == [] and delivered(outcome, flo) == []
    [notice] = delivered(outcome, mod)
    assert notice.content == "flo was muted for 60 s for flooding in den"
    assert notice.extra == {"event": "flood", "username": "flo", "room": "den"}
    assert len(chat.storage.recent_messages("den", 100)) == 10


def test_a_flood_mute_silences_every_room_and_private_messages(chat: Chat, flooder: Any) -> None:
    _, _, _, flo = flooder
    flood_until_muted(chat, flo)
    chat.clock.advance(30)
    text = only_error(chat.send(flo, "msg", "let me talk"))
    assert text == "You are muted for flooding for 30 more seconds"
    chat.send(flo, "leave")
    assert "muted for flooding" in only_error(chat.send(flo, "msg", "lobby then"))
    assert "muted for flooding" in only_error(chat.send(flo, "sendto", "bob hi"))
    assert kinds(chat.send(flo, "names")) == ["info"]  # requests other than messages go on


def test_a_flood_mute_ends_with_the_clock(chat: Chat, flooder: Any) -> None:
    _, _, _, flo = flooder
    flood_until_muted(chat, flo)
    chat.clock.advance(59.75)
    assert "muted for flooding" in only_error(chat.send(flo, "msg", "now?"))
    chat.clock.advance(0.25)
    assert chat.say(flo, "back, and calmer") > 0


def test_a_new_connection_does_not_escape_a_flood_mute(chat: Chat, flooder: Any) -> None:
    _, _, _, flo = flooder
    flood_until_muted(chat, flo)
    chat.service.close_session(flo, "reconnecting")
    again = chat.login("FLO")
    assert "muted for flooding" in only_error(chat.send(again, "msg", "fresh start"))


def test_slow_refusals_spread_out_do_not_mute(chat: Chat, flooder: Any) -> None:
    _, _, _, flo = flooder
    for i in range(10):
        chat.say(flo, f"m{i}")
    for _ in range(4):
        only_error(chat.send(flo, "msg", "x"))
    chat.clock.advance(10.0)  # the strikes are older than the window now
    for i in range(10):
        chat.say(flo, f"again {i}")
    outcome = chat.send(flo, "msg", "x")
    assert only_error(outcome) == SLOW_DOWN


def test_no_flood_notice_when_the_room_has_no_moderators(chat: Chat) -> None:
    flo, bob = chat.login("flo"), chat.login("bob")
    outcome = flood_until_muted(chat, flo)
    assert "muted for 60 s for flooding" in only_error(outcome)
    assert delivered(outcome, bob) == []


def test_unmute_lifts_a_flood_mute(chat: Chat, flooder: Any) -> None:
    _, mod, _, flo = flooder
    flood_until_muted(chat, flo)
    outcome = chat.send(mod, "unmute", "flo")
    assert audience(outcome, "unmute") == {"olivia", "mike", "bob", "flo"}
    chat.clock.advance(1.0)  # the mute is gone; the emptied bucket refills at 5/s
    after = chat.send(flo, "msg", "thanks, I will behave")
    assert [r.content for r in after.replies] == []
    assert [b.response.content for b in after.broadcasts] == ["thanks, I will behave"]
