# Rooms: list, join, leave, create, topic, delete. Handlers are `cmd_<word>` methods.
# Rules: one current room per session; `msg` and `names` act on it; joining replays its
# recent history. Rooms, topics and owners persist through storage; the default room
# always exists and cannot be deleted or left (leave goes back to it).
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from ktnchat.protocol import Request
from ktnchat.service.chat import ChatCommands, split_first
from ktnchat.service.commands import MODERATOR, OWNER
from ktnchat.service.errors import BadContent, ChatError
from ktnchat.service.outcome import Outcome
from ktnchat.service.session import Session
from ktnchat.service.state import LiveRoom
from ktnchat.service.text import scrub_controls
from ktnchat.storage import RoomRecord

ROOM_NAME = re.compile(r"[A-Za-z0-9_-]+")


class RoomCommands(ChatCommands):
    """rooms, join, leave, create, topic, deleteroom."""

    def room_name(self, candidate: str) -> str:
        limit = self.config.max_room_name_chars
        if not candidate:
            raise BadContent("Name a room: letters, digits, _ and -")
        if len(candidate) > limit or not ROOM_NAME.fullmatch(candidate):
            raise BadContent(
                f"Invalid room name {candidate[:40]!r}: 1-{limit} letters, digits, _ or -"
            )
        return candidate

    def existing_room(self, name: str) -> LiveRoom:
        checked = self.room_name(name)
        room: Optional[LiveRoom] = self.stored(
            "room lookup failed", lambda: self.live_room(checked)
        )
        if room is None:
            raise ChatError(f"No room called {name}; create it with: create {name}")
        return room

    def joined_info(self, room: LiveRoom, text: str) -> Any:
        return self.info(text, event="joined", room=room.name, topic=room.topic, owner=room.owner)

    def cmd_rooms(self, session: Session, request: Request) -> Outcome:
        records = self.stored("room list not available now", self.storage.list_rooms)
        counts: Dict[str, int] = {}
        if self.cluster is not None:
            for _, room_key in self.online():
                counts[room_key] = counts.get(room_key, 0) + 1
        listing: List[Dict[str, Any]] = []
        lines: List[str] = []
        for record in records:
            members = (
                counts.get(record.name.lower(), 0)
                if self.cluster is not None
                else self.presence.member_count(record.name.lower())
            )
            listing.append(
                {
                    "name": record.name,
                    "members": members,
                    "topic": record.topic,
                    "owner": record.owner,
                }
            )
            topic = f" - {record.topic}" if record.topic else ""
            lines.append(f"{record.name} ({members}){topic}")
        return self.listing("Rooms:\n", lines, separator="\n", rooms=listing)

    def cmd_join(self, session: Session, request: Request) -> Outcome:
        name, _ = split_first(request.content)
        room = self.existing_room(name)
        if session.room == room.key:
            raise ChatError(f"You are already in {room.name}")
        assert session.username is not None
        ban = self.bans.name_ban(room.key, session.username, self.clock())
        if ban is not None:
            reason = f": {ban.reason}" if ban.reason else ""
            raise ChatError(f"You are banned from {room.name}{reason}")
        outcome = Outcome().reply(self.joined_info(room, f"You joined {room.name}"))
        self.stored("join failed", lambda: self.enter_room(session, room, outcome))
        return outcome

    def cmd_leave(self, session: Session, request: Request) -> Outcome:
        room = self.current_room(session)
        if self.is_default(room):
            raise ChatError(f"You are in {room.name}, which everyone shares; join another room")
        lobby = self.existing_room(self.config.default_room)
        assert session.username is not None
        if self.bans.name_ban(lobby.key, session.username, self.clock()):
            raise ChatError(f"You are banned from {lobby.name}")
        outcome = Outcome().reply(
            self.joined_info(lobby, f"You left {room.name} and are back in {lobby.name}")
        )
        self.stored("leave failed", lambda: self.enter_room(session, lobby, outcome))
        return outcome

    def cmd_create(self, session: Session, request: Request) -> Outcome:
        name, topic = split_first(request.content)
        name = self.room_name(name)
        topic = self.topic_text(topic or "")
        rooms = self.stored("room list not available now", self.storage.list_rooms)
        if len(rooms) >= self.config.max_rooms:
            raise ChatError(f"There are {len(rooms)} rooms already (the limit); join one")
        assert session.username is not None
        record = RoomRecord(name, session.username, topic, self.clock())
        if not self.stored("room not created", lambda: self.storage.create_room(record)):
            raise ChatError(f"Room {name} exists already; join it with: join {name}")
        room = self.existing_room(name)
        hint = (
            ""
            if session.authenticated
            else "; register your name (register <password>) so nobody else can use your "
            "owner rights after you leave"
        )
        outcome = Outcome().reply(self.joined_info(room, f"You created {room.name}{hint}"))
        self.stored("join failed", lambda: self.enter_room(session, room, outcome))
        return outcome

    def topic_text(self, text: str) -> str:
        text = scrub_controls(text.strip()).replace("\n", " ")
        if len(text) > self.config.max_topic_chars:
            raise BadContent(f"Topic too long (the limit is {self.config.max_topic_chars})")
        return text

    def cmd_topic(self, session: Session, request: Request) -> Outcome:
        room = self.current_room(session)
        text = request.text()
        if text is None or not text.strip():
            shown = room.topic or "(no topic)"
            return Outcome().reply(
                self.info(f"Topic of {room.name}: {shown}", room=room.name, topic=room.topic)
            )
        if self.rank(session, room) < MODERATOR:
            raise ChatError(f"Only moderators of {room.name} may set its topic")
        topic = self.topic_text(text)
        if not self.stored("topic not set", lambda: self.storage.set_topic(room.name, topic)):
            raise ChatError(f"Room {room.name} no longer exists")
        with self.presence.lock:
            room.topic = topic
        self.audit(session, "topic", room.name, room.name, topic)
        outcome = Outcome()
        outcome.remote.append({"t": "state", "kind": "topic", "room": room.key, "topic": topic})
        outcome.broadcasts.append(
            self.tell_room(
                room, f"{session.username} set the topic: {topic}", event="topic", topic=topic
            )
        )
        return outcome

    def cmd_deleteroom(self, session: Session, request: Request) -> Outcome:
        name, _ = split_first(request.content)
        room = self.current_room(session)
        if name.lower() != room.key:
            raise BadContent(
                f"To delete the room you are in, confirm its name: deleteroom {room.name}"
            )
        if self.is_default(room):
            raise ChatError(f"{room.name} cannot be deleted")
        if self.rank(session, room) < OWNER:
            raise ChatError(f"Only the owner of {room.name} or an admin may delete it")
        if not self.stored("room not deleted", lambda: self.storage.delete_room(room.name)):
            raise ChatError(f"Room {room.name} no longer exists")
        lobby = self.existing_room(self.config.default_room)
        outcome = Outcome()
        for member in self.presence.members(room.key):
            moved = self.joined_info(
                lobby, f"{room.name} was deleted by {session.username}; you are in {lobby.name}"
            )
            if member is session:
                outcome.reply(moved)
            else:
                outcome.tell(member, moved)
            self.enter_room(member, lobby, outcome, direct=member is session, quiet_leave=True)
        with self.presence.lock:
            self.rooms.pop(room.key, None)
            self.bans.drop_scope(room.key)
        outcome.remote.append(
            {"t": "state", "kind": "room_deleted", "room": room.key, "by": session.username}
        )
        self.audit(session, "deleteroom", room.name, room.name, "")
        return outcome
