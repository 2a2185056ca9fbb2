# Events from the other workers of a cluster: do what they ask to users held here, and
# keep this worker's caches (bans, mutes, topics, moderators, rooms) in step.
# Rules: runs on the storage worker thread (it may load a room from storage); every event
# is idempotent, so a repeated or late event does no harm; unknown kinds are ignored.
from __future__ import annotations

from typing import Any, Dict, Optional

from ktnchat.service.moderation import ModerationCommands
from ktnchat.service.outcome import Outcome
from ktnchat.service.state import FOREVER, LiveRoom
from ktnchat.storage import Ban


class RemoteEvents(ModerationCommands):
    """apply_remote: the receiving end of `act` and `state` bus events."""

    def apply_remote(self, event: Dict[str, Any]) -> Outcome:
        outcome = Outcome()
        kind = event.get("kind")
        if event.get("t") == "act":
            self._act(event, str(kind), outcome)
        elif event.get("t") == "state":
            self._state(event, str(kind), outcome)
        return outcome

    def _loaded(self, room_key: str) -> Optional[LiveRoom]:
        with self.presence.lock:
            return self.rooms.get(room_key)

    def _act(self, event: Dict[str, Any], kind: str, outcome: Outcome) -> None:
        why = str(event.get("why", ""))
        if kind == "disconnect_address":
            address = event.get("address")
            for session in self.presence.sessions():
                if session.host == address:
                    outcome.disconnect.append((session, why))
            return
        target = self.presence.holder(str(event.get("to", "")))
        if target is None:
            return
        if kind == "disconnect":
            outcome.disconnect.append((target, why))
        elif kind in ("remove", "banned"):
            room = self.live_room(str(event.get("room", "")))
            if room is not None:
                self.remove_from_room(str(event.get("by", "")), room, target, why, outcome)

    def _state(self, event: Dict[str, Any], kind: str, outcome: Outcome) -> None:
        if kind == "ban_add":
            ban = Ban(
                str(event["scope"]),
                str(event["ban_kind"]),
                str(event["target"]),
                str(event.get("by", "")),
                str(event.get("reason", "")),
                float(event.get("created", 0.0)),
                event.get("expires"),
            )
            with self.presence.lock:
                self.bans.add(ban)
        elif kind == "ban_del":
            with self.presence.lock:
                self.bans.remove(str(event["scope"]), str(event["ban_kind"]), str(event["target"]))
        elif kind == "flood_mute":
            self.flood_mutes[str(event["name"])] = float(event["until"])
            room = self._loaded(str(event.get("room", "")))
            if room is not None:
                notice = self.flood_notice(room, str(event.get("user", event["name"])))
                if notice is not None:
                    outcome.broadcasts.append(notice)
        elif kind == "room_deleted":
            self._room_deleted(str(event["room"]), str(event.get("by", "")), outcome)
        else:
            room = self._loaded(str(event.get("room", "")))
            if room is None:
                return  # not loaded here: it will be read fresh from storage when needed
            with self.presence.lock:
                if kind == "mute":
                    until = event.get("until")
                    room.mutes[str(event["name"])] = FOREVER if until is None else float(until)
                elif kind == "unmute":
                    room.mutes.pop(str(event["name"]), None)
                    self.flood_mutes.pop(str(event["name"]), None)
                elif kind == "topic":
                    room.topic = str(event["topic"])
                elif kind == "mod":
                    room.moderators.add(str(event["name"]))
                elif kind == "unmod":
                    room.moderators.discard(str(event["name"]))

    def _room_deleted(self, room_key: str, by: str, outcome: Outcome) -> None:
        with self.presence.lock:
            gone = self.rooms.pop(room_key, None)
            self.bans.drop_scope(room_key)
        lobby = self.live_room(self.config.default_room)
        if gone is None or lobby is None:
            return
        for member in self.presence.members(room_key):
            outcome.tell(
                member,
                self.joined_info(
                    lobby, f"{gone.name} was deleted by {by}; you are in {lobby.name}"
                ),
            )
            self.enter_room(member, lobby, outcome, direct=False, quiet_leave=True)


__all__ = ["RemoteEvents"]
