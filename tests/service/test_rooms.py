# Rooms: rooms, join, leave, create, topic, deleteroom; msg/names/history act on the
# current room. Service level, MemoryStorage, hand-advanced clock.
from __future__ import annotations

from typing import Any

import pytest

from ktnchat.service.commands import COMMANDS
from tests.service.fixtures import (
    Chat,
    audience,
    contents,
    delivered,
    events,
    kinds,
    only_error,
    only_info,
)

EXTENSION_WORDS = [
    "rooms", "join", "leave", "create", "topic", "deleteroom", "register", "password",
    "admin", "kick", "mute", "unmute", "ban", "unban", "gban", "gunban", "ipban",
    "ipunban", "bans", "remove", "purge", "mod", "unmod", "modlog", "sendto",
]  # fmt: skip


@pytest.fixture
def chat() -> Chat:
    return Chat()


def test_the_extension_words_are_all_in_the_command_table() -> None:
    assert set(EXTENSION_WORDS) <= set(COMMANDS)


@pytest.mark.parametrize("word", EXTENSION_WORDS)
def test_every_extension_needs_login(chat: Chat, word: str) -> None:
    session = chat.connect()
    text = only_error(chat.send(session, word, "games something"))
    assert text.startswith(f"You must log in before '{word}'")
    assert not session.logged_in and chat.storage.list_rooms()[0].name == "lobby"
    assert len(chat.storage.list_rooms()) == 1 and chat.storage.list_audit(10) == []


# --- rooms -------------------------------------------------------------------------------


def test_rooms_lists_names_members_topics_and_owners(chat: Chat) -> None:
    alice, bob = chat.login("alice"), chat.login("bob")
    chat.create(alice, "games", "board games only")
    chat.login("carol")
    [info] = chat.send(bob, "rooms", "ignored junk").replies
    assert info.kind == "info"
    assert info.content == "Rooms:\ngames (1) - board games only\nlobby (2)"
    assert info.extra["rooms"] == [
        {"name": "games", "members": 1, "topic": "board games only", "owner": "alice"},
        {"name": "lobby", "members": 2, "topic": "", "owner": None},
    ]


# --- join --------------------------------------------------------------------------------


def test_join_replays_the_rooms_history_and_tells_old_and_new_rooms(chat: Chat) -> None:
    alice, bob, carol, dave = (chat.login(n) for n in ("alice", "bob", "carol", "dave"))
    chat.say(alice, "in the lobby")
    chat.create(alice, "games", "chess")
    chat.join(bob, "games")
    chat.clock.advance(5)
    chat.say(alice, "first")
    chat.say(bob, "second")
    outcome = chat.send(carol, "join", "games")
    joined, history = outcome.replies
    assert joined.kind == "info" and joined.content == "You joined games"
    assert (joined.extra["event"], joined.extra["room"]) == ("joined", "games")
    assert (joined.extra["topic"], joined.extra["owner"]) == ("chess", "alice")
    assert contents(history) == ["first", "second"]
    assert [m.sender for m in history.content] == ["alice", "bob"]
    # The lobby (dave is left there) hears carol leave; games (alice, bob) hears her join.
    assert audience(outcome, "leave") == {"dave"}
    assert audience(outcome, "join") == {"alice", "bob"}
    [leave] = delivered(outcome, dave)
    assert leave.content == "carol left the room" and leave.extra["room"] == "lobby"
    [join] = delivered(outcome, alice)
    assert join.content == "carol joined games" and join.extra["username"] == "carol"
    assert carol.room == "games"


def test_join_is_case_insensitive_and_names_the_room_as_created(chat: Chat) -> None:
    alice, bob = chat.login("alice"), chat.login("bob")
    chat.create(alice, "Games")
    joined = chat.join(bob, "GAMES").replies[0]
    assert joined.extra["room"] == "Games" and bob.room == "games"


def test_msg_names_and_history_act_on_the_current_room(chat: Chat) -> None:
    alice, bob, carol = chat.login("alice"), chat.login("bob"), chat.login("carol")
    chat.create(alice, "games")
    chat.join(bob, "games")
    outcome = chat.send(alice, "msg", "gg")
    [broadcast] = outcome.broadcasts
    assert set(broadcast.recipients) == {alice, bob}
    assert carol not in broadcast.recipients
    [names] = chat.send(bob, "names").replies
    assert names.extra == {"names": ["alice", "bob"], "room": "games"}
    assert chat.history(bob) == ["gg"]
    assert chat.history(carol) == []
    assert [m.text for m in chat.storage.recent_messages("games", 10)] == ["gg"]
    assert chat.storage.recent_messages("lobby", 10) == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("nowhere", "No room called nowhere; create it with: create nowhere"),
        ("", "Name a room"),
        (None, "Name a room"),
        ("bad!name", "Invalid room name"),
        ("x" * 25, "Invalid room name"),
    ],
)
def test_join_refusals(chat: Chat, content: Any, expected: str) -> None:
    alice = chat.login("alice")
    assert only_error(chat.send(alice, "join", content)).startswith(expected)
    assert alice.room == "lobby"


def test_join_the_room_you_are_in_is_refused(chat: Chat) -> None:
    alice = chat.login("alice")
    assert only_error(chat.send(alice, "join", "lobby")) == "You are already in lobby"
    chat.create(alice, "games")
    assert only_error(chat.send(alice, "join", "GAMES")) == "You are already in games"


def test_join_notices_stop_in_big_rooms() -> None:
    chat = Chat(announce_max_members=2)
    alice, bob, carol = chat.login("alice"), chat.login("bob"), chat.login("carol")
    chat.create(alice, "games")
    assert audience(chat.join(bob, "games"), "join") == {"alice"}
    outcome = chat.join(carol, "games")
    assert audience(outcome, "join") == set()


# --- leave -------------------------------------------------------------------------------


def test_leave_goes_back_to_the_lobby_with_its_history(chat: Chat) -> None:
    alice, bob, carol = chat.login("alice"), chat.login("bob"), chat.login("carol")
    chat.say(carol, "lobby talk")
    chat.create(alice, "games")
    chat.join(bob, "games")
    chat.say(bob, "games talk")
    outcome = chat.send(alice, "leave", "stale content")
    joined, history = outcome.replies
    assert joined.content == "You left games and are back in lobby"
    assert (joined.extra["event"], joined.extra["room"]) == ("joined", "lobby")
    assert contents(history) == ["lobby talk"]
    assert alice.room == "lobby"
    assert events(outcome, bob) == ["leave"] and events(outcome, carol) == ["join"]
    assert audience(outcome, "leave") == {"bob"} and audience(outcome, "join") == {"carol"}


def test_leave_in_the_lobby_is_refused(chat: Chat) -> None:
    alice = chat.login("alice")
    assert "join another room" in only_error(chat.send(alice, "leave"))
    assert alice.room == "lobby"


# --- create ------------------------------------------------------------------------------


def test_create_makes_the_creator_owner_and_joins_it(chat: Chat) -> None:
    alice = chat.login("alice")
    chat.login("bob")
    outcome = chat.create(alice, "games", "chess and go")
    joined, history = outcome.replies
    assert joined.content.startswith("You created games")
    assert "register your name" in joined.content  # alice is not registered
    assert joined.extra == {
        "event": "joined",
        "room": "games",
        "topic": "chess and go",
        "owner": "alice",
    }
    assert contents(history) == []
    assert audience(outcome, "leave") == {"bob"}
    record = chat.storage.get_room("games")
    assert record is not None and (record.owner, record.topic) == ("alice", "chess and go")
    assert alice.room == "games"


def test_a_registered_creator_gets_no_registration_hint(chat: Chat) -> None:
    olivia = chat.member("olivia")
    joined = chat.create(olivia, "den").replies[0]
    assert joined.content == "You created den"


@pytest.mark.parametrize("name", ["GAMES", "games", "Games"])
def test_create_a_room_that_exists_is_refused_whatever_the_case(chat: Chat, name: str) -> None:
    alice, bob = chat.login("alice"), chat.login("bob")
    chat.create(alice, "games")
    text = only_error(chat.send(bob, "create", name))
    assert text == f"Room {name} exists already; join it with: join {name}"
    assert chat.storage.get_room("games").owner == "alice"
    assert bob.room == "lobby"


def test_create_a_room_named_like_the_lobby_is_refused(chat: Chat) -> None:
    alice = chat.login("alice")
    assert "exists already" in only_error(chat.send(alice, "create", "LOBBY"))


@pytest.mark.parametrize("name", ["", "bad!", "x" * 25, "æøå", "a.b", "a/b"])
def test_create_with_an_invalid_name_is_refused(chat: Chat, name: str) -> None:
    alice = chat.login("alice")
    text = only_error(chat.send(alice, "create", name))
    assert text.startswith(("Invalid room name", "Name a room"))
    assert len(chat.storage.list_rooms()) == 1


@pytest.mark.parametrize("name", ["a", "x" * 24, "with_under-dash", "R2D2"])
def test_create_with_a_valid_name(chat: Chat, name: str) -> None:
    alice = chat.login("alice")
    chat.create(alice, name)
    assert chat.storage.get_room(name).name == name


def test_create_is_limited_by_max_rooms() -> None:
    chat = Chat(max_rooms=3)  # the lobby counts
    alice = chat.login("alice")
    chat.create(alice, "one")
    chat.create(alice, "two")
    text = only_error(chat.send(alice, "create", "three"))
    assert text == "There are 3 rooms already (the limit); join one"
    assert chat.storage.get_room("three") is None and alice.room == "two"


def test_create_with_a_topic_too_long_is_refused() -> None:
    chat = Chat(max_topic_chars=10)
    alice = chat.login("alice")
    assert "Topic too long" in only_error(chat.send(alice, "create", "games " + "x" * 11))
    assert chat.storage.get_room("games") is None
    chat.create(alice, "games", "x" * 10)


# --- topic -------------------------------------------------------------------------------


def test_anyone_may_read_the_topic(chat: Chat) -> None:
    alice, bob = chat.login("alice"), chat.login("bob")
    info = only_info(chat.send(bob, "topic"))
    assert info.content == "Topic of lobby: (no topic)" and info.extra["topic"] == ""
    chat.create(alice, "games", "chess")
    chat.join(bob, "games")
    for content in (None, "", "   "):
        info = only_info(chat.send(bob, "topic", content))
        assert info.content == "Topic of games: chess"
        assert info.extra == {"room": "games", "topic": "chess"}


def test_a_moderator_sets_the_topic_and_the_room_is_told(chat: Chat) -> None:
    owner, mod = chat.owned_room("den")
    bob = chat.login("bob")
    chat.join(bob, "den")
    outside = chat.login("carol")
    outcome = chat.send(mod, "topic", "  be nice\nplease ")
    assert outcome.replies == []
    assert audience(outcome, "topic") == {"olivia", "mike", "bob"}
    [notice] = delivered(outcome, bob)
    assert notice.content == "mike set the topic: be nice please"
    assert notice.extra == {"event": "topic", "topic": "be nice please", "room": "den"}
    assert delivered(outcome, outside) == []
    assert chat.storage.get_room("den").topic == "be nice please"
    assert only_info(chat.send(bob, "topic")).extra["topic"] == "be nice please"
    assert chat.send(owner, "topic", "owner's topic").broadcasts


def test_a_plain_user_cannot_set_the_topic(chat: Chat) -> None:
    owner, _ = chat.owned_room("den")
    chat.send(owner, "topic", "original")
    bob = chat.login("bob")
    chat.join(bob, "den")
    assert (
        only_error(chat.send(bob, "topic", "mine now"))
        == "Only moderators of den may set its topic"
    )
    assert chat.storage.get_room("den").topic == "original"


def test_an_unregistered_creator_cannot_set_the_topic(chat: Chat) -> None:
    # Owner rights count only for a session that logged in with the account's password.
    alice = chat.login("alice")
    chat.create(alice, "games")
    assert "Only moderators" in only_error(chat.send(alice, "topic", "mine"))
    assert chat.storage.get_room("games").topic == ""


def test_an_admin_sets_the_topic_of_the_lobby(chat: Chat) -> None:
    root = chat.admin("root")
    outcome = chat.send(root, "topic", "welcome")
    assert audience(outcome, "topic") == {"root"}
    assert chat.storage.get_room("lobby").topic == "welcome"


def test_a_topic_too_long_is_refused() -> None:
    chat = Chat(max_topic_chars=5)
    root = chat.admin("root")
    assert only_error(chat.send(root, "topic", "123456")).startswith("Topic too long")
    assert chat.send(root, "topic", "12345").broadcasts


# --- deleteroom --------------------------------------------------------------------------


def test_the_owner_deletes_a_room_and_its_members_move_to_the_lobby(chat: Chat) -> None:
    owner, mod = chat.owned_room("den")
    bob, carol = chat.login("bob"), chat.login("carol")
    chat.join(bob, "den")
    chat.say(carol, "lobby talk")
    message_id = chat.say(bob, "den talk")
    outcome = chat.send(owner, "deleteroom", "DEN")
    moved, history = outcome.replies
    assert moved.content == "den was deleted by olivia; you are in lobby"
    assert (moved.extra["event"], moved.extra["room"]) == ("joined", "lobby")
    assert contents(history) == ["lobby talk"]
    for member in (mod, bob):
        told = delivered(outcome, member)
        moved_infos = [r for r in told if r.extra.get("event") == "joined"]
        assert [r.content for r in moved_infos] == ["den was deleted by olivia; you are in lobby"]
        assert [contents(r) for r in told if r.kind == "history"] == [["lobby talk"]]
    assert {s.room for s in (owner, mod, bob, carol)} == {"lobby"}
    assert "olivia" in audience(outcome, "join") and "carol" in audience(outcome, "join")
    # Messages, moderators and the room itself are gone.
    assert chat.storage.get_room("den") is None
    assert chat.storage.get_message(message_id) is None
    assert chat.storage.moderators("den") == set()
    assert "No room called den" in only_error(chat.send(bob, "join", "den"))
    [rooms] = chat.send(bob, "rooms").replies
    assert [r["name"] for r in rooms.extra["rooms"]] == ["lobby"]


def test_a_recreated_room_has_no_old_moderators_bans_or_messages(chat: Chat) -> None:
    owner, mod = chat.owned_room("den")
    bob = chat.login("bob")
    chat.join(bob, "den")
    chat.say(bob, "old")
    assert chat.send(mod, "ban", "bob").replies
    chat.send(owner, "deleteroom", "den")
    alice = chat.member("alice")
    chat.create(alice, "den")
    assert chat.join(bob, "den").replies[1].content == ()
    # mike was a moderator of the old den only.
    chat.join(mod, "den")
    assert "'kick' is for moderators of den" in only_error(chat.send(mod, "kick", "bob"))


def test_deleteroom_needs_the_confirmation_name(chat: Chat) -> None:
    owner, _ = chat.owned_room("den")
    for content in (None, "", "other", "lobby"):
        text = only_error(chat.send(owner, "deleteroom", content))
        assert text == "To delete the room you are in, confirm its name: deleteroom den"
    assert chat.storage.get_room("den") is not None


def test_the_lobby_cannot_be_deleted_even_by_an_admin(chat: Chat) -> None:
    root = chat.admin("root")
    assert only_error(chat.send(root, "deleteroom", "lobby")) == "lobby cannot be deleted"
    plain = chat.login("bob")
    assert "'deleteroom' is for owners of lobby" in only_error(
        chat.send(plain, "deleteroom", "lobby")
    )
    assert chat.storage.get_room("lobby") is not None


def test_deleteroom_is_refused_to_moderators_and_users(chat: Chat) -> None:
    _, mod = chat.owned_room("den")
    bob = chat.login("bob")
    chat.join(bob, "den")
    assert only_error(chat.send(mod, "deleteroom", "den")) == "'deleteroom' is for owners of den"
    text = only_error(chat.send(bob, "deleteroom", "den"))
    assert text.startswith("'deleteroom' is for owners of den (roles count only when you log in")
    assert chat.storage.get_room("den") is not None


def test_an_admin_deletes_any_room(chat: Chat) -> None:
    chat.owned_room("den")
    root = chat.admin("root")
    chat.join(root, "den")
    assert kinds(chat.send(root, "deleteroom", "den")) == ["info", "history"]
    assert chat.storage.get_room("den") is None
