# ChatService: one method per request word; returns Outcomes, never touches a socket.
#
# Rules:
# - `handle` is the single edge where ChatErrors become `error` replies.
# - Locks: Presence.lock guards names and membership; a per-room lock orders the room's
#   writes, so a message is stored, given its id and fanned out to a membership snapshot
#   atomically with respect to joins (a joiner sees a message in its history or live,
#   never both, never neither). Storage is called under the room lock only, never under
#   Presence.lock. Room locks are taken only by handlers that call storage (which run on
#   the storage worker when the store can block), never on the paths an I/O thread runs
#   for a blocking store (leave, names, help, close), so a slow store cannot stall I/O.
# - A message is acknowledged (echoed and broadcast) only after storage.append_message
#   returned; a StorageError becomes an `error` and nothing is sent to anyone else.
# - The clock is injected (`clock`), so tests fix time.
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from ktnchat import __version__
from ktnchat.protocol import ERROR, HISTORY, INFO, MESSAGE, Request, Response
from ktnchat.service.commands import COMMANDS, help_lines
from ktnchat.service.config import ServiceConfig
from ktnchat.service.errors import (
    AlreadyLoggedIn,
    BadContent,
    ChatError,
    NotLoggedIn,
    StorageUnavailable,
    UnknownRequest,
    UsernameTaken,
)
from ktnchat.service.names import validate_username
from ktnchat.service.outcome import Broadcast, Outcome
from ktnchat.service.presence import Presence
from ktnchat.service.session import Session
from ktnchat.service.text import scrub_controls, split_items
from ktnchat.storage import Storage, StorageError, StoredMessage

log = logging.getLogger("ktnchat.service")

Handler = Callable[[Session, Request], Outcome]


class ChatService:
    """The chat's rules: login, messages, names, history; live state in memory."""

    def __init__(
        self,
        storage: Storage,
        config: Optional[ServiceConfig] = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.config = config or ServiceConfig()
        self.clock = clock
        self.presence = Presence()
        # Capabilities the front-end offers; advertised in the login info's "features".
        self.features: List[str] = list(self.config.features)
        self._room_locks: Dict[str, threading.Lock] = {}
        self._handlers: Dict[str, Handler] = {
            "login": self._login,
            "logout": self._logout,
            "msg": self._msg,
            "names": self._names,
            "history": self._history,
            "help": self._help,
            "stream": self._stream,
        }
        missing = set(COMMANDS) ^ set(self._handlers)
        assert not missing, f"command table and handlers disagree: {missing}"

    # -- the edge -------------------------------------------------------------------

    def open_session(self, peer: str, transport: Any = None) -> Session:
        """A new connection; it starts logged out."""
        return Session(peer, transport)

    def handle(self, session: Session, request: Request) -> Outcome:
        """Answer one request. Refusals become an `error` reply to the requester."""
        try:
            command = COMMANDS.get(request.word)
            if command is None:
                raise UnknownRequest(request.word)
            if command.needs_login and not session.logged_in:
                raise NotLoggedIn(request.word)
            return self._handlers[request.word](session, request)
        except ChatError as refusal:
            return Outcome().reply(self.error(str(refusal)))

    def uses_storage(self, request: Request) -> bool:
        """True if handling `request` may call a store that blocks (so not on an I/O thread)."""
        if self.storage.INLINE_SAFE:
            return False
        command = COMMANDS.get(request.word)
        return command is not None and command.uses_storage

    def close_session(self, session: Session, reason: str) -> Outcome:
        """The connection is gone (EOF, reset, timeout, overflow): free its name at once."""
        with self.presence.lock:  # login on the storage worker checks `closed` under it
            if session.closed:
                return Outcome()
            session.closed = True
        outcome = Outcome()
        self._leave_chat(session, f"left the chat ({reason})", outcome)
        return outcome

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

    # -- responses --------------------------------------------------------------------

    def timestamp(self, when: Optional[float] = None) -> str:
        """The wire form of a moment: a string, as seed 001 requires."""
        moment = self.clock() if when is None else when
        parts = time.gmtime(moment) if self.config.utc else time.localtime(moment)
        return time.strftime(self.config.timestamp_format, parts)

    def error(self, text: str) -> Response:
        return Response(ERROR, text, self.config.server_name, self.timestamp())

    def info(self, text: str, **extra: Any) -> Response:
        return Response(INFO, text, self.config.server_name, self.timestamp(), extra)

    def message_response(self, message: StoredMessage) -> Response:
        return Response(
            MESSAGE,
            message.text,
            message.sender,
            self.timestamp(message.created),
            {"id": message.id},
        )

    def shutdown_notice(self) -> Response:
        return self.info("Server is shutting down; goodbye", event="shutdown")

    # -- handlers ---------------------------------------------------------------------

    def _login(self, session: Session, request: Request) -> Outcome:
        if session.username is not None:
            raise AlreadyLoggedIn(session.username)
        username = validate_username(request.content, self.config.max_username_chars)
        if not self.presence.claim(session, username):
            if session.closed:
                return Outcome()  # the connection went away while this waited for storage
            raise UsernameTaken(username)
        log.info("%s logged in as %s", session.peer, username)
        outcome = Outcome().reply(
            self.info(
                f"Login successful; welcome, {username}",
                username=username,
                server=f"ktnchat/{__version__}",
                features=list(self.features),
            )
        )
        try:
            self._enter_room(session, self.config.default_room, outcome)
        except StorageError as exc:
            self.presence.release(session)
            log.warning("login of %s failed: storage error: %s", username, exc)
            raise StorageUnavailable("login failed; try again") from exc
        return outcome

    def _enter_room(self, session: Session, room: str, outcome: Outcome) -> None:
        """Join `room`: history to the joiner, a notice to the others, atomically."""
        with self._room_lock(room):
            recent = self.storage.recent_messages(room, self.config.history_on_login)
            members = self.presence.members(room)
            self.presence.enter(session, room)
        outcome.reply(self._history_response(recent))
        if members and len(members) + 1 <= self.config.announce_max_members:
            notice = self.info(
                f"{session.username} joined the chat",
                event="join",
                username=session.username,
                room=room,
            )
            outcome.broadcasts.append(Broadcast(room, notice, recipients=members))

    def _logout(self, session: Session, request: Request) -> Outcome:
        name = session.username
        outcome = Outcome().reply(
            self.info(
                f"Logged out {name}; you are still connected and may log in again", username=name
            )
        )
        self._leave_chat(session, "left the chat", outcome)
        return outcome

    def _leave_chat(self, session: Session, what: str, outcome: Outcome) -> None:
        name = session.username
        if name is None:
            return
        room = session.room
        if room is not None:
            # No room lock here: leaving may happen on an I/O thread while the storage
            # worker holds the room lock in a slow store. A leaver racing a broadcast is
            # skipped by delivery (its connection is closed) or simply gets the message.
            with self.presence.lock:
                self.presence.leave(session)
                members = self.presence.members(room)
            if members and len(members) + 1 <= self.config.announce_max_members:
                notice = self.info(f"{name} {what}", event="leave", username=name, room=room)
                outcome.broadcasts.append(Broadcast(room, notice, recipients=members))
        self.presence.release(session)
        log.info("%s (%s) %s", name, session.peer, what)

    def _msg(self, session: Session, request: Request) -> Outcome:
        text = request.content
        if not isinstance(text, str):
            raise BadContent("msg needs text: msg <message>")
        if not text.strip():
            raise BadContent("Empty message not sent")
        if len(text) > self.config.max_message_chars:
            raise BadContent(
                f"Message too long ({len(text)} characters; the limit is "
                f"{self.config.max_message_chars}); not sent"
            )
        text = scrub_controls(text)
        room = session.room
        assert room is not None and session.username is not None
        with self._room_lock(room):
            try:
                stored = self.storage.append_message(room, session.username, text, self.clock())
            except StorageError as exc:
                log.warning("message from %s not stored: %s", session.username, exc)
                raise StorageUnavailable("message not sent") from exc
            members = self.presence.members(room)
        outcome = Outcome()
        outcome.broadcasts.append(
            Broadcast(room, self.message_response(stored), recipients=members)
        )
        return outcome

    def _names(self, session: Session, request: Request) -> Outcome:
        room = session.room or self.config.default_room
        names = self.presence.usernames(room)
        pieces = split_items(f"Users in {room}: ", names, self.config.text_chunk_chars)
        outcome = Outcome()
        for index, piece in enumerate(pieces):
            # The full list rides on the first piece for clients that read extra keys.
            extra: Dict[str, Any] = {"names": names, "room": room} if index == 0 else {}
            outcome.reply(self.info(piece, **extra))
        return outcome

    def _history(self, session: Session, request: Request) -> Outcome:
        limit = _count(request.content, self.config.history_on_login, self.config.history_max)
        room = session.room or self.config.default_room
        try:
            recent = self.storage.recent_messages(room, limit)
        except StorageError as exc:
            raise StorageUnavailable("history not available now") from exc
        return Outcome().reply(self._history_response(recent))

    def _help(self, session: Session, request: Request) -> Outcome:
        title = (
            "Requests you can send now:"
            if session.logged_in
            else ("Requests you can send now (log in to see more):")
        )
        lines = help_lines(session.logged_in)
        pieces = split_items(title + "\n", lines, self.config.text_chunk_chars, separator="\n")
        outcome = Outcome()
        for piece in pieces:
            outcome.reply(self.info(piece))
        return outcome

    def _stream(self, session: Session, request: Request) -> Outcome:
        choice = request.text()
        on = choice is None or choice.strip().lower() not in ("off", "0", "false", "no")
        state = "on: responses may share a TCP segment" if on else "off: one response per segment"
        outcome = Outcome().reply(self.info(f"Streaming output {state}", stream=on))
        outcome.stream = on
        return outcome

    # -- helpers ------------------------------------------------------------------------

    def _history_response(self, messages: List[StoredMessage]) -> Response:
        entries = tuple(self.message_response(message) for message in messages)
        return Response(HISTORY, entries, self.config.server_name, self.timestamp())

    def _room_lock(self, room: str) -> threading.Lock:
        with self.presence.lock:
            lock = self._room_locks.get(room)
            if lock is None:
                lock = self._room_locks[room] = threading.Lock()
            return lock


def _count(content: object, default: int, maximum: int) -> int:
    """A count from request content; anything that is not a positive number means default."""
    if isinstance(content, bool):
        return default
    if isinstance(content, int):
        value = content
    elif isinstance(content, str) and content.strip().isdigit():
        value = int(content.strip()[:9])
    else:
        return default
    return max(1, min(value, maximum))
