# The memory store's own promise: at most `max_messages` per room, the oldest dropped
# first, and every lookup by id (get, delete, prev) right across rooms and a full ring.
from __future__ import annotations

from ktnchat.storage.memory import MemoryStorage


def test_a_full_room_drops_its_oldest_and_lookups_by_id_follow() -> None:
    store = MemoryStorage(max_messages=5)
    lobby = [store.append_message("lobby", "ann", f"l{i}", float(i)) for i in range(12)]
    games = [store.append_message("Games", "bob", f"g{i}", float(i)) for i in range(3)]
    kept = lobby[-5:]
    assert store.recent_messages("lobby", 100) == kept
    assert all(store.get_message(m.id) is None for m in lobby[:-5])  # dropped
    assert [store.get_message(m.id) for m in kept + games] == kept + games
    assert store.get_message(games[-1].id + 1) is None
    assert store.delete_message(kept[2].id) == kept[2]  # from the middle
    assert store.delete_message(kept[2].id) is None
    assert store.recent_messages("lobby", 100) == kept[:2] + kept[3:]
    assert store.delete_message(kept[-1].id) == kept[-1]  # the newest
    after = store.append_message("LOBBY", "ann", "next", 20.0)
    assert after.prev == kept[-2].id
    assert store.messages_after("lobby", kept[0].id, 10) == ([kept[1], kept[3], after], 3)
    for _ in range(10):  # still bounded after deletions
        store.append_message("lobby", "ann", "more", 30.0)
    assert len(store.recent_messages("lobby", 100)) == 5


def test_deleting_by_sender_and_pruning_keep_order_and_bound() -> None:
    store = MemoryStorage(max_messages=4)
    made = [store.append_message("lobby", name, "x", float(i)) for i, name in enumerate("abab")]
    assert store.delete_messages_by("A") == [made[0].id, made[2].id]
    assert store.recent_messages("lobby", 10) == [made[1], made[3]]
    for i in range(3):
        made.append(store.append_message("lobby", "c", "y", 10.0 + i))
    assert store.recent_messages("lobby", 10) == [made[3], *made[4:]]  # bound of 4 held
    assert store.prune_messages(keep_per_room=2) == 2
    assert store.recent_messages("lobby", 10) == made[5:]
    assert store.prune_messages(older_than=11.5) == 1
    assert store.recent_messages("lobby", 10) == made[6:]
