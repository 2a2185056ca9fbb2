# ServiceCore: what every group of handlers shares — configuration, the store, live
# state (presence, rooms, bans, mutes), response builders, ranks, room moves and audit.
#
# Rules:
# - Handlers return Outcomes; nothing here sends.
# - Locks: Presence.lock guards names, membership, live rooms, bans and mutes; a per-room
#   lock orders a room's writes (store a message and snapshot its members together; join
#   reads history and becomes a member together). Storage is called under a room lock,
#   never under Presence.lock. Room locks are taken only by handlers marked
#   `uses_storage` (run on the storage worker when the store can block).
# - Privileges never rest on a bare name: owner and moderator rights count only for a
#   session that logged in with its account's password (`authenticated`); admin rights
#   only for a session that proved the admin secret.
# - Counting (`metrics`, set by the front-end when metrics are on) goes to the calling
#   thread's plain integers; labels come from fixed sets (command words, moderation kinds).
#   Log calls pass their structured fields (ktnchat/logs.py); a moderation action's line
#   always names who did it.
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

from ktnchat.logs import log_fields
from ktnchat.metrics import MODERATION_KINDS, Registry
from ktnchat.protocol import ERROR, HISTORY, INFO, Response
from ktnchat.service.commands import ADMIN, MODERATOR, OWNER, USER
from ktnchat.service.config import ServiceConfig
from ktnchat.service.errors import ChatError, StorageUnavailable
from ktnchat.service.flood import AttemptLimiter
from ktnchat.service.outcome import Broadcast, Outcome
from ktnchat.service.presence import Presence
from ktnchat.service.session import Session
from ktnchat.service.state import BanCache, LiveRoom
from ktnchat.service.text import split_items
from ktnchat.storage import RoomRecord, Storage, StorageError, StoredMessage, key

if TYPE_CHECKING:
    from ktnchat.cluster.link import ClusterLink

log = logging.getLogger("ktnchat.service")

RoomEntry = Callable[[Session, str, str], Tuple[Sequence[Session], int]]


class ServiceCore:
    """Shared state and helpers of the chat service."""

    def __init__(
        self,
        storage: Storage,
        config: Optional[ServiceConfig] = None,
        clock: Callable[[], float] = time.time,
        admin_secret: Optional[str] = None,
    ) -> None:
        self.storage = storage
        self.config = config or ServiceConfig()
        self.clock = clock
        self._stamp_cache: Tuple[int, str] = (-1, "")
        self.presence = Presence()
        self._admin_secret = admin_secret or None
        # Capabilities the front-end offers; advertised in the login info's "features".
        self.features: List[str] = list(self.config.features)
        self._room_locks: Dict[str, threading.Lock] = {}
        self.rooms: Dict[str, LiveRoom] = {}
        self.flood_mutes: Dict[str, float] = {}  # name key -> muted until (sustained flooding)
        self.attempts = AttemptLimiter()
        self.bans = BanCache(storage.list_bans())  # may raise StorageError at start-up
        # The cluster link (several worker processes) or None for one process.
        self.cluster: Optional[ClusterLink] = None
        # Where handlers count (requests, logins, flood, moderation); None: metrics off.
        self.metrics: Optional[Registry] = None
        # In a cluster, joins go through the room's sequencer (ktnchat/cluster/order.py):
        # (session, room key, room name) -> (members before the joiner, its history floor).
        self.room_entry: Optional[RoomEntry] = None
        self._ensure_default_room()

    def apply_retention(self) -> int:
        """Remove messages past the retention limits; returns how many went.

        Raises:
            StorageError: the store failed (the caller logs it and tries again later).
        """
        keep = self.config.retention_messages or None
        days = self.config.retention_days
        if keep is None and not days:
            return 0
        older_than = self.clock() - days * 86400.0 if days else None
        removed = self.storage.prune_messages(keep_per_room=keep, older_than=older_than)
        if removed:
            log.info("retention: removed %d old message(s)", removed)
        return removed

    # -- responses ------------------------------------------------------------------------

    def timestamp(self, when: Optional[float] = None) -> str:
        """The wire form of a moment: a string, as seed 001 requires (formatted once per
        second: strftime per message was 3.5% of a busy server's time)."""
        moment = self.clock() if when is None else when
        second = int(moment)
        cached = self._stamp_cache
        if cached[0] == second:
            return cached[1]
        parts = time.gmtime(second) if self.config.utc else time.localtime(second)
        text = time.strftime(self.config.timestamp_format, parts)
        self._stamp_cache = (second, text)
        return text

    def error(self, text: str) -> Response:
        return Response(ERROR, text, self.config.server_name, self.timestamp())

    def info(self, text: str, **extra: Any) -> Response:
        return Response(INFO, text, self.config.server_name, self.timestamp(), extra)

    def message_response(self, message: StoredMessage) -> Response:
        return Response.message(
            message.text, message.sender, self.timestamp(message.created), {"id": message.id}
        )

    def history_response(self, messages: List[StoredMessage]) -> Response:
        entries = tuple(self.message_response(message) for message in messages)
        return Response(HISTORY, entries, self.config.server_name, self.timestamp())

    def listing(
        self, prefix: str, items: List[str], separator: str = ", ", **extra: Any
    ) -> Outcome:
        """`info` replies listing `items` after `prefix`, split into pieces small enough for
        naive clients; `extra` keys (the full list, for clients that read them) ride on the
        first piece only."""
        outcome = Outcome()
        pieces = split_items(prefix, items, self.config.text_chunk_chars, separator)
        for index, piece in enumerate(pieces):
            outcome.reply(self.info(piece, **(extra if index == 0 else {})))
        return outcome

    def shutdown_notice(self) -> Response:
        return self.info("Server is shutting down; goodbye", event="shutdown")

    # -- rooms ----------------------------------------------------------------------------

    def _ensure_default_room(self) -> None:
        name = self.config.default_room
        if self.storage.get_room(name) is None:
            self.storage.create_room(RoomRecord(name, None, "", self.clock()))
        self.live_room(name)

    def room_lock(self, room: str) -> threading.Lock:
        room_key = key(room)
        lock = self._room_locks.get(room_key)  # made once, never replaced: no lock to read
        if lock is not None:
            return lock
        with self.presence.lock:
            lock = self._room_locks.get(room_key)
            if lock is None:
                lock = self._room_locks[room_key] = threading.Lock()
            return lock

    def live_room(self, name: str) -> Optional[LiveRoom]:
        """The room called `name` (any case), loaded from storage on first use; None if none.

        Raises:
            StorageError: the room had to be loaded and the store failed.
        """
        with self.presence.lock:
            room = self.rooms.get(key(name))
        if room is not None:
            return room
        record = self.storage.get_room(name)
        if record is None:
            return None
        loaded = LiveRoom.from_record(record, self.storage.moderators(name))
        with self.presence.lock:
            return self.rooms.setdefault(loaded.key, loaded)

    def current_room(self, session: Session) -> LiveRoom:
        """The room the session is in (the default room if somehow none)."""
        joined = session.room
        if joined is not None:  # read without the lock: a room is stored whole, once
            room = self.rooms.get(joined)
            if room is not None:
                return room
        with self.presence.lock:
            room = self.rooms.get(session.room or key(self.config.default_room))
        assert room is not None, "a session's room is always loaded"
        return room

    def is_default(self, room: LiveRoom) -> bool:
        return room.key == key(self.config.default_room)

    def enter_room(
        self,
        session: Session,
        room: LiveRoom,
        outcome: Outcome,
        direct: bool = True,
        quiet_leave: bool = False,
    ) -> None:
        """Move `session` into `room`: leave notice to the old room, history to the joiner,
        join notice to the new room. Reading history and joining happen atomically.
        `direct`: the joiner is the requester (else its history goes to it by broadcast).
        `quiet_leave`: tell the old room nothing (it is being deleted)."""
        old_key = session.room
        if old_key is not None and old_key != room.key:
            if quiet_leave:
                with self.presence.lock:
                    self.presence.leave(session)
            else:
                self.leave_room(session, "left the room", outcome)
        with self.room_lock(room.name):
            if self.room_entry is None:
                recent = self.storage.recent_messages(room.name, self.config.history_on_login)
                members: Sequence[Session] = self.presence.members(room.key)
                self.presence.enter(session, room.key)
            else:  # a cluster: the history stops where this worker's live stream starts
                members, floor = self.room_entry(session, room.key, room.name)
                try:
                    recent = self.storage.recent_messages(
                        room.name, self.config.history_on_login, before_id=floor + 1
                    )
                except StorageError:
                    self.presence.leave(session)
                    raise
        self.note_room(session)
        if direct:
            outcome.reply(self.history_response(recent))
        else:
            outcome.tell(session, self.history_response(recent))
        if (members or self.cluster is not None) and (
            len(members) + 1 <= self.config.announce_max_members
        ):
            where = "the chat" if self.is_default(room) else room.name
            notice = self.info(
                f"{session.username} joined {where}",
                event="join",
                username=session.username,
                room=room.name,
            )
            outcome.broadcasts.append(Broadcast(room.key, notice, recipients=members))

    def leave_room(self, session: Session, what: str, outcome: Outcome) -> None:
        """Take `session` out of its room and tell the members left behind.

        No room lock: this runs on I/O threads (logout, disconnect) while the storage
        worker may hold the room lock in a slow store. A leaver racing a broadcast is
        skipped by delivery or simply gets the message."""
        with self.presence.lock:
            room_key = self.presence.leave(session)
            if room_key is None:
                return
            members = self.presence.members(room_key)
            room = self.rooms.get(room_key)
        name = room.name if room is not None else room_key
        if (members or self.cluster is not None) and (
            len(members) + 1 <= self.config.announce_max_members
        ):
            notice = self.info(
                f"{session.username} {what}", event="leave", username=session.username, room=name
            )
            outcome.broadcasts.append(Broadcast(room_key, notice, recipients=members))

    def missed_notice(self, room_name: str, missed: int) -> Response:
        """To a room's users after a catch-up longer than the bound (cluster only)."""
        return self.info(
            f"{missed} earlier message(s) of {room_name} could not be delivered to you "
            "during an interruption; `history` shows them",
            event="missed",
            room=room_name,
            missed=missed,
        )

    def tell_room(self, room: LiveRoom, text: str, **extra: Any) -> Broadcast:
        """An info to every member of `room` (whatever its size)."""
        notice = self.info(text, room=room.name, **extra)
        return Broadcast(room.key, notice, recipients=self.presence.members(room.key))

    # -- the cluster (several worker processes share names, rooms and events) -------------

    def cluster_call(self, what: str, action: Callable[[], Any]) -> Any:
        """Run a cluster call, turning an outage into a clear refusal."""
        from ktnchat.cluster.link import ClusterUnavailable

        try:
            return action()
        except ClusterUnavailable as exc:
            log.warning("cluster error (%s): %s", what, exc)
            raise StorageUnavailable(what) from exc

    def claim_name(self, session: Session, username: str) -> bool:
        """Give `username` to `session` here and, in a cluster, everywhere."""
        if not self.presence.claim(session, username):
            return False
        cluster = self.cluster
        if cluster is None:
            return True
        try:
            held = self.cluster_call(
                "login failed; try again",
                lambda: cluster.claim(key(username), username, session.room),
            )
        except ChatError:
            self.presence.release(session)
            raise
        if not held:
            self.presence.release(session)
        return bool(held)

    def release_name(self, session: Session) -> None:
        name = session.username
        self.presence.release(session)
        if self.cluster is not None and name is not None:
            try:
                self.cluster.release(key(name))
            except Exception as exc:  # the heartbeat expiry frees it anyway
                log.warning("cluster: could not release %s: %s", name, exc)

    def note_room(self, session: Session) -> None:
        """Tell the cluster which room the session is in now (for names, rooms, who)."""
        if self.cluster is not None and session.username is not None:
            try:
                self.cluster.set_room(key(session.username), session.username, session.room)
            except Exception as exc:
                log.warning("cluster: could not record %s's room: %s", session.username, exc)

    def online(self) -> List[Tuple[str, str]]:
        """(name, room key) of everyone online, in this process or the whole cluster."""
        cluster = self.cluster
        if cluster is None:
            return [(s.username, s.room or "") for s in self.presence.sessions() if s.username]
        entries = self.cluster_call("list not available now", cluster.online)
        return [(name, room) for _, name, room in entries]

    def room_usernames(self, room: LiveRoom) -> List[str]:
        if self.cluster is None:
            return self.presence.usernames(room.key)
        return sorted((n for n, r in self.online() if r == room.key), key=key)

    def locate(self, name: str) -> Optional[str]:
        """The display name of `name` if it is online on another worker."""
        cluster = self.cluster
        if cluster is None:
            return None
        found = self.cluster_call("lookup failed", lambda: cluster.locate(key(name)))
        return None if found is None or found[0] == cluster.worker else str(found[1])

    def remote_room(self, name: str) -> Optional[str]:
        """The room key of `name` if it is online on another worker."""
        if self.cluster is None:
            return None
        for who, room in self.online():
            if key(who) == key(name) and self.presence.holder(name) is None:
                return room
        return None

    def tell_user(self, outcome: Outcome, name: str, response: Response) -> None:
        """Send `response` to the user `name`, here or on the worker that holds it."""
        target = self.presence.holder(name)
        if target is not None:
            outcome.tell(target, response)
        elif self.cluster is not None:
            from ktnchat.cluster.events import response_to_wire

            outcome.remote.append({"t": "user", "to": key(name), "r": response_to_wire(response)})

    def reassert_names(self) -> None:
        """After a Redis restart: claim this worker's names again."""
        if self.cluster is None:
            return
        entries = [
            (key(s.username), s.username, s.room) for s in self.presence.sessions() if s.username
        ]
        lost = self.cluster.reassert(entries)
        log.warning(
            "cluster: re-claimed %d local name(s); %d taken meanwhile elsewhere: %s",
            len(entries) - len(lost),
            len(lost),
            ", ".join(lost[:20]),
        )

    # -- privileges -----------------------------------------------------------------------

    def rank(self, session: Session, room: Optional[LiveRoom] = None) -> int:
        """The session's role in `room` (its current room by default)."""
        if session.admin:
            return ADMIN
        if not session.authenticated or session.username is None:
            return USER
        room = room or self.current_room(session)
        who = key(session.username)
        if room.owner is not None and key(room.owner) == who:
            return OWNER
        return MODERATOR if who in room.moderators else USER

    def name_rank(self, name: str, room: LiveRoom) -> int:
        """The role a name holds in `room`, whoever is using it (protects owners and
        moderators from being kicked or banned by their peers)."""
        holder = self.presence.holder(name)
        if holder is not None and holder.admin:
            return ADMIN
        who = key(name)
        if room.owner is not None and key(room.owner) == who:
            return OWNER
        return MODERATOR if who in room.moderators else USER

    def admin_secret_matches(self, given: str) -> bool:
        from ktnchat.service.passwords import secret_matches

        return self._admin_secret is not None and secret_matches(given, self._admin_secret)

    # -- audit ----------------------------------------------------------------------------

    def audit(self, actor: Session, action: str, target: str, room: str, detail: str) -> None:
        """Log and store a moderator action (the store failing does not undo it)."""
        log.info(
            "moderation: %s %s %s in %s %s",
            actor.username,
            action,
            target,
            room or "-",
            detail,
            extra=log_fields(
                "moderation",
                conn=actor.id,
                user=actor.username,
                room=room or None,
                peer=actor.peer,
                by=actor.username or "?",
                action=action,
                target=target,
            ),
        )
        if self.metrics is not None and action in MODERATION_KINDS:
            self.metrics.counters().count_moderation(action)
        try:
            self.storage.append_audit(
                actor.username or "?", action, target, room, detail, self.clock()
            )
        except StorageError as exc:
            log.warning("moderation log entry not stored: %s", exc)

    # -- helpers --------------------------------------------------------------------------

    @staticmethod
    def stored(what: str, action: Callable[[], Any]) -> Any:
        """Run a storage call, turning a StorageError into a clear refusal."""
        try:
            return action()
        except StorageError as exc:
            log.warning("storage error (%s): %s", what, exc)
            raise StorageUnavailable(what) from exc

    @staticmethod
    def refuse(text: str) -> ChatError:
        return ChatError(text)
