# ChatService: binds every request word of the command table to its handler and is the
# single edge where refusals become `error` replies. Handlers live in chat.py, rooms.py,
# accounts.py and moderation.py; shared state and helpers in core.py.
#
# Rules:
# - `handle` checks, in this order and only here: known word (aliases included), flood
#   limit, login, rank in the current room (from the command table). Then the handler.
# - Every ChatError becomes an `error` reply to the requester (plus any notices it carries).
# - `needs_worker` says where a request may run: not on an I/O thread if it may call a
#   store that blocks, hashes a password, or (in a cluster) touches Redis.
# - With metrics on, every request is counted here, once, by word (unknown words as
#   "other") and outcome ("ok", or "error" for a refusal); logins and failed logins too,
#   and stored messages: `msg` answers only once the store accepted the message.
from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional

from ktnchat.protocol import ERROR, Request, Response
from ktnchat.service.chat import split_first
from ktnchat.service.commands import ALIASES, COMMANDS, RANK_NAMES, USER, Command
from ktnchat.service.config import ServiceConfig
from ktnchat.service.errors import ChatError, FloodRefused, NotLoggedIn, UnknownRequest
from ktnchat.service.flood import FloodGuard
from ktnchat.service.outcome import Outcome
from ktnchat.service.remote import RemoteEvents
from ktnchat.service.session import Session
from ktnchat.storage import Storage

Handler = Callable[[Session, Request], Outcome]

# Requests answered from this process's memory alone, in a cluster too (on the I/O thread).
CLUSTER_INLINE = frozenset({"help", "stream"})
# The `requests` counter's labels, made once: (word, outcome) for every word of the table.
_OK = {word: (word, "ok") for word in COMMANDS}  # a handled request's word is always here
_ERROR = {word: (word, "error") for word in COMMANDS}


def _always_inline(command: Command, store_inline_safe: bool) -> bool:
    """Without a cluster: `command` runs on the I/O thread whatever its content (a login
    may carry a password to hash, so it is asked of each login)."""
    if command.cpu_heavy or command.word == "login":
        return False
    return not command.uses_storage or store_inline_safe


class ChatService(RemoteEvents):
    """The chat's rules. Live state in memory; durable state through `storage`."""

    def __init__(
        self,
        storage: Storage,
        config: Optional[ServiceConfig] = None,
        clock: Callable[[], float] = time.time,
        admin_secret: Optional[str] = None,
    ) -> None:
        super().__init__(storage, config, clock, admin_secret)
        self._handlers: Dict[str, Handler] = {
            word: getattr(self, f"cmd_{word}") for word in COMMANDS
        }
        # The words (aliases too) that never leave the I/O thread when there is no
        # cluster, whatever their content: needs_worker's answer for most requests.
        self._inline_words = frozenset(
            word
            for word in (*COMMANDS, *ALIASES)
            if _always_inline(COMMANDS[ALIASES.get(word, word)], storage.INLINE_SAFE)
        )

    # -- the edge -------------------------------------------------------------------------

    def open_session(self, peer: str, transport: object = None, host: str = "") -> Session:
        """A new connection; it starts logged out."""
        flood = self.config.flood
        guard = FloodGuard(flood, self.clock()) if flood.enabled else None
        return Session(peer, transport, host=host, flood=guard)

    def handle(self, session: Session, request: Request) -> Outcome:
        """Answer one request. Refusals become an `error` reply to the requester."""
        if request.edition == 2014 and session.edition != 2014:
            session.edition = 2014
        word = ALIASES.get(request.word, request.word)
        try:
            command = COMMANDS.get(word)
            if command is None:
                raise UnknownRequest(request.word)
            if session.flood is not None:
                verdict = session.flood.check_request(self.clock())
                if not verdict.allowed:
                    if self.metrics is not None:
                        self.metrics.counters().flood_refusals += 1
                    raise ChatError(
                        f"Slow down: too many requests; try again in "
                        f"{max(verdict.retry_after, 0.1):.1f} s"
                    )
            if command.needs_login and session.username is None:  # not logged in
                raise NotLoggedIn(word)
            if command.rank > USER and self.rank(session) < command.rank:
                room = self.current_room(session)
                raise ChatError(
                    f"'{word}' is for {RANK_NAMES[command.rank]}s of {room.name}"
                    + (
                        ""
                        if session.authenticated or session.admin
                        else " (roles count only when you log in with your password)"
                    )
                )
            if word != request.word:
                request = Request(word, request.content)
            outcome = self._handlers[word](session, request)
        except ChatError as refusal:
            outcome = Outcome().reply(self.refusal(refusal, word, request))
            if isinstance(refusal, FloodRefused):
                outcome.broadcasts.extend(refusal.notices)
            if self.metrics is not None:
                self._count_refusal(word)
            return outcome
        metrics = self.metrics
        if metrics is not None:  # inline: this is every request's path (msg's too)
            counts = metrics.counters()
            label = _OK[word]
            requests = counts.requests
            requests[label] = requests.get(label, 0) + 1
            if word == "msg":
                counts.messages_stored += 1
            elif word == "login" and session.logged_in:  # not a connection gone meanwhile
                counts.logins += 1
        return outcome

    def _count_refusal(self, word: str) -> None:
        assert self.metrics is not None
        counts = self.metrics.counters()
        label = _ERROR.get(word) or ("other", "error")
        requests = counts.requests
        requests[label] = requests.get(label, 0) + 1
        if word == "login":
            counts.logins_failed += 1

    def refusal(self, refusal: ChatError, word: str, request: Request) -> Response:
        """The `error` for a refused request: its text, plus machine-readable extras."""
        extra: Dict[str, Any] = {"code": refusal.code, "request": word}
        if word == "login":
            extra["username"] = split_first(request.content)[0] or None
        return Response(ERROR, str(refusal), self.config.server_name, self.timestamp(), extra)

    def needs_worker(self, request: Request) -> bool:
        """True if `request` must not run on an I/O thread: it may call a store that
        blocks, or it hashes a password."""
        cluster = self.cluster
        if cluster is None and request.word in self._inline_words:
            return False
        command = COMMANDS.get(ALIASES.get(request.word, request.word))
        if command is None:
            return False  # answered with an error, here and in a cluster
        if cluster is not None:
            # Cluster state is on the network (Redis): never on an I/O thread, except for
            # the few requests that touch neither the store nor the cluster.
            return command.word not in CLUSTER_INLINE
        if command.cpu_heavy:
            return True
        if command.word == "login" and split_first(request.content)[1] is not None:
            return True  # a password to verify
        return command.uses_storage and not self.storage.INLINE_SAFE

    def close_session(self, session: Session, reason: str) -> Outcome:
        """The connection is gone (EOF, reset, timeout, overflow): free its name at once."""
        with self.presence.lock:  # login on the storage worker checks `closed` under it
            if session.closed:
                return Outcome()
            session.closed = True
        outcome = Outcome()
        self.leave_chat(session, f"left the chat ({reason})", outcome)
        return outcome
