# Room membership snapshots: one shared, unchangeable object per membership, replaced by
# every join and leave (the fan-out groups broadcasts by that object's identity).
from __future__ import annotations

import pytest

from ktnchat.service.presence import Members, Presence
from ktnchat.service.session import Session


def test_a_snapshot_is_shared_until_the_membership_changes() -> None:
    presence = Presence()
    alice, bob = Session("peer-a"), Session("peer-b")
    presence.enter(alice, "lobby")
    first = presence.members("lobby")
    assert isinstance(first, Members) and list(first) == [alice]
    assert presence.members("lobby") is first
    presence.enter(bob, "lobby")
    second = presence.members("lobby")
    assert second is not first and list(second) == [alice, bob]
    assert list(first) == [alice]  # an old snapshot never changes
    with pytest.raises((TypeError, AttributeError)):
        second.append(alice)  # type: ignore[attr-defined]


def test_moving_to_another_room_renews_both_snapshots() -> None:
    presence = Presence()
    alice, bob = Session("peer-a"), Session("peer-b")
    presence.enter(alice, "lobby")
    presence.enter(bob, "lobby")
    presence.enter(bob, "den")
    lobby, den = presence.members("lobby"), presence.members("den")
    presence.enter(alice, "den")
    assert list(presence.members("lobby")) == []
    assert presence.members("lobby") is not lobby
    assert list(presence.members("den")) == [bob, alice] and presence.members("den") is not den
    presence.leave(bob)
    assert list(presence.members("den")) == [alice]
