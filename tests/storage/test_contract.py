# One contract, every adapter: memory, SQLite (real files), MongoDB through mongomock,
# and a real MongoDB when KTNCHAT_TEST_MONGO_URL is set.
from __future__ import annotations

import threading
from typing import Callable, List

import pytest

from ktnchat.storage import (
    SERVER_WIDE,
    Account,
    Ban,
    RoomRecord,
    Storage,
    StoredMessage,
)

T0 = 1_700_000_000.0


def fill(
    store: Storage, room: str, count: int, sender: str = "alice", start: float = T0
) -> List[StoredMessage]:
    return [store.append_message(room, sender, f"{room} {i}", start + i) for i in range(count)]


# -- messages -------------------------------------------------------------------------


def test_append_returns_the_message_with_a_new_id(store: Storage) -> None:
    message = store.append_message("lobby", "alice", "hello ☃\n\ttab", T0)
    assert (message.room, message.sender, message.text, message.created) == (
        "lobby",
        "alice",
        "hello ☃\n\ttab",
        T0,
    )
    assert isinstance(message.id, int) and message.id > 0
    assert store.get_message(message.id) == message


def test_ids_are_unique_and_increase_across_rooms(store: Storage) -> None:
    ids = [store.append_message(room, "a", "x", T0).id for room in ("r1", "r2", "r1", "r3") * 5]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_recent_messages_are_the_newest_oldest_first(store: Storage) -> None:
    messages = fill(store, "lobby", 10)
    fill(store, "other", 3)
    assert store.recent_messages("lobby", 4) == messages[-4:]
    assert store.recent_messages("lobby", 100) == messages
    assert store.recent_messages("lobby", 0) == []
    assert store.recent_messages("nowhere", 5) == []


def test_recent_messages_before_an_id_pages_backwards(store: Storage) -> None:
    messages = fill(store, "lobby", 10)
    page = store.recent_messages("lobby", 3, before_id=messages[5].id)
    assert page == messages[2:5]
    assert store.recent_messages("lobby", 3, before_id=messages[0].id) == []


def test_room_names_are_case_insensitive_for_messages(store: Storage) -> None:
    store.append_message("Lobby", "alice", "one", T0)
    store.append_message("LOBBY", "bob", "two", T0 + 1)
    assert [m.text for m in store.recent_messages("lobby", 10)] == ["one", "two"]


def test_delete_message(store: Storage) -> None:
    a, b, c = fill(store, "lobby", 3)
    assert store.delete_message(b.id) == b
    assert store.delete_message(b.id) is None
    assert store.get_message(b.id) is None
    assert store.recent_messages("lobby", 10) == [a, c]
    assert store.delete_message(999_999) is None


def test_delete_messages_by_sender_in_a_room_or_everywhere(store: Storage) -> None:
    fill(store, "r1", 3, sender="Spammer")
    keep = fill(store, "r1", 2, sender="alice")
    spam2 = fill(store, "r2", 2, sender="spammer")
    removed = store.delete_messages_by("SPAMMER", room="R1")
    assert len(removed) == 3 and removed == sorted(removed)
    assert store.recent_messages("r1", 10) == keep
    assert store.recent_messages("r2", 10) == spam2
    assert store.delete_messages_by("spammer") == [m.id for m in spam2]
    assert store.delete_messages_by("nobody") == []


def test_prune_by_count_keeps_the_newest_per_room(store: Storage) -> None:
    r1 = fill(store, "r1", 6)
    r2 = fill(store, "r2", 2)
    assert store.prune_messages(keep_per_room=3) == 3
    assert store.recent_messages("r1", 10) == r1[-3:]
    assert store.recent_messages("r2", 10) == r2


def test_prune_by_age(store: Storage) -> None:
    old = fill(store, "r1", 3, start=T0)
    new = fill(store, "r1", 2, start=T0 + 1000)
    assert store.prune_messages(older_than=T0 + 500) == len(old)
    assert store.recent_messages("r1", 10) == new
    assert store.prune_messages() == 0


def test_concurrent_appends_from_threads_lose_nothing(store: Storage) -> None:
    results: List[StoredMessage] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        for i in range(50):
            message = store.append_message("lobby", f"w{n}", str(i), T0 + i)
            with lock:
                results.append(message)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len({m.id for m in results}) == 200
    stored = store.recent_messages("lobby", 1000)
    assert len(stored) == 200 and [m.id for m in stored] == sorted(m.id for m in results)


# -- rooms -------------------------------------------------------------------------


def test_rooms(store: Storage) -> None:
    lobby = RoomRecord("lobby", None, "", T0)
    games = RoomRecord("Games", "alice", "fun", T0 + 1)
    assert store.create_room(lobby) and store.create_room(games)
    assert not store.create_room(RoomRecord("GAMES", "bob", "", T0))
    assert store.get_room("games") == games
    assert store.get_room("nope") is None
    assert store.list_rooms() == [games, lobby]
    assert store.set_topic("GAMES", "chess only")
    assert store.get_room("games").topic == "chess only"
    assert not store.set_topic("nope", "x")


def test_delete_room_takes_its_messages_moderators_and_bans(store: Storage) -> None:
    store.create_room(RoomRecord("games", "alice", "", T0))
    fill(store, "games", 3)
    store.add_moderator("games", "bob")
    store.add_ban(Ban("games", "name", "carol", "alice", "", T0))
    store.add_ban(Ban(SERVER_WIDE, "name", "dave", "admin", "", T0))
    assert store.delete_room("Games")
    assert not store.delete_room("games")
    assert store.recent_messages("games", 10) == []
    assert store.moderators("games") == set()
    assert [b.target for b in store.list_bans()] == ["dave"]


# -- moderators -------------------------------------------------------------------------


def test_moderators_are_case_insensitive_keys(store: Storage) -> None:
    assert store.add_moderator("Lobby", "Alice")
    assert not store.add_moderator("lobby", "ALICE")
    store.add_moderator("lobby", "bob")
    assert store.moderators("LOBBY") == {"alice", "bob"}
    assert store.remove_moderator("lobby", "alice")
    assert not store.remove_moderator("lobby", "alice")
    assert store.moderators("lobby") == {"bob"}
    assert store.moderators("elsewhere") == set()


# -- bans -------------------------------------------------------------------------


def test_bans(store: Storage) -> None:
    room_ban = Ban("games", "name", "carol", "alice", "spam", T0)
    server_ban = Ban(SERVER_WIDE, "address", "10.1.2.3", "admin", "", T0, expires=T0 + 60)
    store.add_ban(room_ban)
    store.add_ban(server_ban)
    assert store.list_bans() == [server_ban, room_ban]
    assert store.list_bans("games") == [room_ban]
    assert store.list_bans(SERVER_WIDE) == [server_ban]
    replaced = Ban("games", "name", "carol", "bob", "again", T0 + 5)
    store.add_ban(replaced)
    assert store.list_bans("games") == [replaced]
    assert store.remove_ban("games", "name", "carol")
    assert not store.remove_ban("games", "name", "carol")
    assert store.list_bans("games") == []
    assert server_ban.active(T0 + 59) and not server_ban.active(T0 + 60)


# -- accounts -------------------------------------------------------------------------


def test_accounts(store: Storage) -> None:
    account = Account("Alice", "scrypt$salt$hash", T0)
    assert store.create_account(account)
    assert not store.create_account(Account("alice", "other", T0))
    assert store.get_account("ALICE") == account
    assert store.get_account("bob") is None
    assert store.set_password("alice", "new$hash")
    assert store.get_account("alice").password_hash == "new$hash"
    assert not store.set_password("bob", "x")


# -- audit -------------------------------------------------------------------------


def test_audit_log_newest_first_with_paging(store: Storage) -> None:
    entries = [
        store.append_audit("alice", "ban", f"user{i}", "lobby", "spam", T0 + i) for i in range(5)
    ]
    assert [e.id for e in entries] == sorted(e.id for e in entries)
    assert store.list_audit(3) == entries[::-1][:3]
    assert store.list_audit(10, before_id=entries[2].id) == entries[1::-1]
    assert entries[0].action == "ban" and entries[0].target == "user0"


# -- durability -------------------------------------------------------------------------


def test_everything_survives_a_reopen(open_store: Callable[[], Storage], durable: bool) -> None:
    if not durable:
        pytest.skip("this adapter keeps nothing across restarts (by design)")
    first = open_store()
    messages = fill(first, "lobby", 5)
    first.delete_message(messages[0].id)
    first.create_room(RoomRecord("games", "alice", "fun", T0))
    first.add_moderator("games", "bob")
    ban = Ban(SERVER_WIDE, "name", "mallory", "admin", "spam", T0)
    first.add_ban(ban)
    first.create_account(Account("alice", "h", T0))
    entry = first.append_audit("admin", "ban", "mallory", "", "spam", T0)
    first.close()
    second = open_store()
    assert second.recent_messages("lobby", 10) == messages[1:]
    assert second.get_room("games") == RoomRecord("games", "alice", "fun", T0)
    assert second.moderators("games") == {"bob"}
    assert second.list_bans() == [ban]
    assert second.get_account("alice") == Account("alice", "h", T0)
    assert second.list_audit(10) == [entry]
    newer = second.append_message("lobby", "bob", "after restart", T0 + 100)
    assert newer.id > messages[-1].id  # ids never go back after a restart


# -- the store as a cluster's sequencer -----------------------------------------------


def test_append_gives_the_previous_id_of_its_room(store: Storage) -> None:
    first = store.append_message("lobby", "a", "1", T0)
    elsewhere = store.append_message("other", "a", "x", T0)
    second = store.append_message("Lobby", "b", "2", T0)
    assert first.prev == 0 and elsewhere.prev == 0
    assert second.prev == first.id
    assert store.get_message(second.id) == second  # prev is not part of identity


def test_prev_skips_a_deleted_message_and_stays_below_the_id(store: Storage) -> None:
    a, b = fill(store, "lobby", 2)
    store.delete_message(b.id)
    c = store.append_message("lobby", "a", "c", T0)
    assert a.id <= c.prev < c.id  # b's id (a head that stays) or a's (the newest left)


def test_prev_chains_concurrent_appends_in_id_order(store: Storage) -> None:
    appended: List[StoredMessage] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        for i in range(25):
            message = store.append_message("busy", f"w{n}", str(i), T0)
            with lock:
                appended.append(message)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    chain = sorted(appended, key=lambda m: m.id)
    assert [m.prev for m in chain] == [0] + [m.id for m in chain[:-1]]


def test_messages_after_gives_the_newest_and_the_count(store: Storage) -> None:
    messages = fill(store, "lobby", 10)
    fill(store, "other", 3)
    assert store.messages_after("lobby", messages[6].id, 100) == (messages[7:], 3)
    assert store.messages_after("lobby", messages[2].id, 4) == (messages[-4:], 7)
    assert store.messages_after("lobby", 0, 0) == ([], 10)
    assert store.messages_after("lobby", messages[-1].id, 5) == ([], 0)
    assert store.messages_after("nowhere", 0, 5) == ([], 0)


def test_the_generic_messages_after_agrees_with_the_adapter(store: Storage) -> None:
    messages = fill(store, "lobby", 1203)  # more than one page of the generic version
    for after, limit in ((0, 1000), (messages[700].id, 1000), (messages[5].id, 3), (0, 0)):
        assert Storage.messages_after(store, "lobby", after, limit) == store.messages_after(
            "lobby", after, limit
        )
