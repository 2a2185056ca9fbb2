# The 2017 edition's requests and their close relatives: login (with optional account
# password), logout, msg, sendto (seed 004's private message), names, history, help,
# stream. Handlers are `cmd_<word>` methods mixed into ChatService.
# Rules: a message is acknowledged (echoed, broadcast) only after the store accepted it;
# muted or flooding users are refused before anything is stored.
from __future__ import annotations

import re
from typing import Any, Optional, Tuple

from ktnchat import __version__
from ktnchat.logs import log_fields
from ktnchat.protocol import MESSAGE, Request, Response
from ktnchat.protocol.codec import stream_choice
from ktnchat.service.commands import allowed_words, help_lines
from ktnchat.service.core import ServiceCore, log
from ktnchat.service.errors import (
    AlreadyLoggedIn,
    BadContent,
    ChatError,
    FloodRefused,
    InvalidUsername,
    StorageUnavailable,
    UsernameTaken,
)
from ktnchat.service.names import validate_username
from ktnchat.service.outcome import Broadcast, Outcome
from ktnchat.service.passwords import verify_password
from ktnchat.service.session import Session
from ktnchat.service.state import LiveRoom
from ktnchat.service.text import scrub_controls
from ktnchat.storage import StorageError, key

ASCII_DIGITS = re.compile(r"[0-9]+")  # not str.isdigit(): "²".isdigit() is True, int("²") fails


def split_first(content: Any) -> Tuple[str, Optional[str]]:
    """`"word rest of it"` -> ("word", "rest of it"); non-strings -> ("", None)."""
    if not isinstance(content, str):
        return "", None
    parts = content.strip().split(None, 1)
    if not parts:
        return "", None
    return parts[0], (parts[1] if len(parts) > 1 else None)


class ChatCommands(ServiceCore):
    """login, logout, msg, sendto, names, history, help, stream."""

    # -- login / logout -------------------------------------------------------------------

    def cmd_login(self, session: Session, request: Request) -> Outcome:
        if session.username is not None:
            raise AlreadyLoggedIn(session.username)
        typed, password = split_first(request.content)
        username = validate_username(
            typed or request.content,
            self.config.max_username_chars,
            underscores=session.edition == 2014,
        )
        now = self.clock()
        ban = self.bans.server_ban(username, session.host, now)
        if ban is None:
            ban = self.bans.name_ban(key(self.config.default_room), username, now)
        if ban is not None:
            log.info(
                "%s: refused login as %s: banned",
                session.peer,
                username,
                extra=log_fields(
                    "login_refused", conn=session.id, user=username, peer=session.peer
                ),
            )
            raise ChatError(f"You are banned from this server{_reason(ban.reason)}")
        account = self.stored("login failed; try again", lambda: self.storage.get_account(username))
        if account is not None:
            if password is None:
                raise ChatError(
                    f"{username} is a registered name; log in with: login {username} <password>"
                )
            if not self.attempts.allow(session.host, now):
                raise ChatError("Too many failed attempts; wait a minute and try again")
            if not verify_password(password, account.password_hash):
                self.attempts.record_failure(session.host, now)
                log.warning(
                    "%s: wrong password for %s",
                    session.peer,
                    username,
                    extra=log_fields(
                        "login_failed", conn=session.id, user=username, peer=session.peer
                    ),
                )
                raise ChatError(f"Wrong password for {username}")
            username = account.name
        elif password is not None:
            raise InvalidUsername(
                "use only the letters A-Z, a-z and the digits 0-9 "
                "(login <name> <password> is only for registered names)"
            )
        if not self.claim_name(session, username):
            if session.closed:
                return Outcome()  # the connection went away while this waited for storage
            raise UsernameTaken(username)
        session.authenticated = account is not None
        log.info(
            "%s logged in as %s%s",
            session.peer,
            username,
            " (registered)" if account is not None else "",
            extra=log_fields(
                "login",
                conn=session.id,
                user=username,
                room=self.config.default_room,
                peer=session.peer,
            ),
        )
        outcome = Outcome().reply(
            self.info(
                f"Login successful; welcome, {username}",
                username=username,
                server=f"ktnchat/{__version__}",
                features=list(self.features),
                room=self.config.default_room,
            )
        )
        try:
            lobby = self.live_room(self.config.default_room)
            assert lobby is not None
            self.enter_room(session, lobby, outcome)
        except StorageError as exc:
            self.presence.release(session)
            session.authenticated = False
            log.warning("login of %s failed: storage error: %s", username, exc)
            raise StorageUnavailable("login failed; try again") from exc
        return outcome

    def cmd_logout(self, session: Session, request: Request) -> Outcome:
        name = session.username
        outcome = Outcome().reply(
            self.info(
                f"Logged out {name}; you are still connected and may log in again",
                username=name,
            )
        )
        self.leave_chat(session, "left the chat", outcome)
        return outcome

    def leave_chat(self, session: Session, what: str, outcome: Outcome) -> None:
        """Log the session out: leave its room, free its name, drop its privileges."""
        name = session.username
        if name is None:
            return
        self.leave_room(session, what, outcome)
        self.release_name(session)
        session.authenticated = session.admin = False
        log.info(
            "%s (%s) %s",
            name,
            session.peer,
            what,
            extra=log_fields("logout", conn=session.id, user=name, peer=session.peer),
        )

    # -- messages -------------------------------------------------------------------------

    def message_text(self, content: Any) -> str:
        """Validate a message body; returns it with control characters scrubbed."""
        if not isinstance(content, str):
            raise BadContent("msg needs text: msg <message>")
        if not content or content.isspace():  # what `not content.strip()` says, unallocated
            raise BadContent("Empty message not sent")
        if len(content) > self.config.max_message_chars:
            raise BadContent(
                f"Message too long ({len(content)} characters; the limit is "
                f"{self.config.max_message_chars}); not sent"
            )
        return scrub_controls(content)

    def check_may_send(self, session: Session) -> None:
        """Refuse a message from a flooding or flood-muted user."""
        if not self.flood_mutes and session.flood is None:
            return  # the common case, flood control off: nothing to look up
        now = self.clock()
        assert session.username is not None
        until = self.flood_mutes.get(key(session.username), 0.0)
        if until > now:
            if self.metrics is not None:
                self.metrics.counters().flood_refusals += 1
            raise ChatError(f"You are muted for flooding for {until - now:.0f} more seconds")
        if session.flood is None:
            return
        verdict = session.flood.check_message(now)
        if verdict.allowed:
            return
        if self.metrics is not None:
            counts = self.metrics.counters()
            counts.flood_refusals += 1
            if verdict.mute_started:
                counts.flood_mutes += 1
        text = (
            f"Slow down: too many messages; try again in {max(verdict.retry_after, 0.1):.1f} s"
            " (message not sent)"
        )
        if not verdict.mute_started:
            raise ChatError(text)
        # Sustained flooding: silence the name for a while and tell the room's moderators.
        self.flood_mutes[key(session.username)] = session.flood.muted_until
        room = self.current_room(session)
        if self.cluster is not None:
            # The other workers keep the mute, and tell their moderators of the room.
            self.cluster.publish(
                {
                    "t": "state",
                    "kind": "flood_mute",
                    "name": key(session.username),
                    "until": session.flood.muted_until,
                    "user": session.username,
                    "room": room.key,
                }
            )
        log.warning(
            "%s (%s) muted for flooding",
            session.username,
            session.peer,
            extra=log_fields(
                "flood_mute",
                conn=session.id,
                user=session.username,
                room=room.name,
                peer=session.peer,
                by="flood control",
            ),
        )
        notice = self.flood_notice(room, session.username, session)
        raise FloodRefused(
            f"You are muted for {self.config.flood.mute_seconds:g} s for flooding; "
            "message not sent",
            [] if notice is None else [notice],
        )

    def flood_notice(
        self, room: LiveRoom, username: str, exclude: Optional[Session] = None
    ) -> Optional[Broadcast]:
        """Tell the room's moderators held here that `username` was muted for flooding."""
        watchers = [
            m for m in self.presence.members(room.key) if m is not exclude and self.rank(m, room)
        ]
        if not watchers:
            return None
        notice = self.info(
            f"{username} was muted for {self.config.flood.mute_seconds:g} s for flooding "
            f"in {room.name}",
            event="flood",
            username=username,
            room=room.name,
        )
        return Broadcast("", notice, recipients=watchers)

    def cmd_msg(self, session: Session, request: Request) -> Outcome:
        text = self.message_text(request.content)
        room = self.current_room(session)
        assert session.username is not None
        if room.mutes and room.muted(session.username, self.clock()):
            raise ChatError(f"You are muted in {room.name}; message not sent")
        if self.flood_mutes or session.flood is not None:  # else nothing to check
            self.check_may_send(session)
        with self.room_lock(room.name):
            try:
                stored = self.storage.append_message(
                    room.name, session.username, text, self.clock()
                )
            except StorageError as exc:
                log.warning("message from %s not stored: %s", session.username, exc)
                raise StorageUnavailable("message not sent") from exc
            members = self.presence.members(room.key)
        # Broadcast(room, response, exclude, recipients, to_user, seq), by position: this
        # is every chat message's path.
        broadcast = Broadcast(
            room.key, self.message_response(stored), None, members, None, (stored.id, stored.prev)
        )
        return Outcome(broadcasts=[broadcast])

    def cmd_sendto(self, session: Session, request: Request) -> Outcome:
        target_name, body = split_first(request.content)
        if not target_name or body is None:
            raise BadContent("sendto needs a user and a message: sendto <user> <message>")
        text = self.message_text(body)
        target = self.presence.holder(target_name)
        remote = None if target is not None else self.locate(target_name)
        if (target is None or target.username is None) and remote is None:
            raise ChatError(f"{target_name} is not online; message not sent")
        self.check_may_send(session)
        assert session.username is not None
        if target is None:  # on another worker: the bus carries it there
            assert remote is not None
            message = Response(
                MESSAGE, text, session.username, self.timestamp(), {"private": True, "to": remote}
            )
            outcome = Outcome()
            outcome.broadcasts.append(Broadcast("", message, recipients=[session], to_user=remote))
            return outcome
        message = Response(
            MESSAGE,
            text,
            session.username,
            self.timestamp(),
            {"private": True, "to": target.username},
        )
        recipients = [target] if target is session else [target, session]
        outcome = Outcome()
        outcome.broadcasts.append(
            Broadcast("", message, recipients=recipients, to_user=target.username)
        )
        return outcome

    # -- the rest -------------------------------------------------------------------------

    def cmd_names(self, session: Session, request: Request) -> Outcome:
        room = self.current_room(session)
        names = self.room_usernames(room)
        return self.listing(f"Users in {room.name}: ", names, names=names, room=room.name)

    def cmd_who(self, session: Session, request: Request) -> Outcome:
        """Everyone online, in any room. Allowed before login (like help): the CS3560
        assignment lists the users to clients that are not logged in."""
        names = sorted((name for name, _ in self.online()), key=key)
        return self.listing("Users online: ", names, names=names)

    def cmd_history(self, session: Session, request: Request) -> Outcome:
        limit = count_from(request.content, self.config.history_on_login, self.config.history_max)
        room = self.current_room(session)
        recent = self.stored(
            "history not available now",
            lambda: self.storage.recent_messages(room.name, limit),
        )
        return Outcome().reply(self.history_response(recent))

    def cmd_help(self, session: Session, request: Request) -> Outcome:
        logged_in = session.logged_in
        title = (
            "Requests you can send now:"
            if logged_in
            else "Requests you can send now (log in to see more):"
        )
        rank = self.rank(session) if logged_in else 0
        # Extra key: the request words themselves, for clients that show only what the
        # server says this user may send (the web client's moderator actions).
        return self.listing(
            title + "\n",
            help_lines(logged_in, rank),
            separator="\n",
            requests=allowed_words(logged_in, rank),
        )

    def cmd_stream(self, session: Session, request: Request) -> Outcome:
        on = stream_choice(request.text()) is not False  # anything but a clear "off"
        state = "on: responses may share a TCP segment" if on else "off: one response per segment"
        outcome = Outcome().reply(self.info(f"Streaming output {state}", stream=on))
        outcome.stream = on
        return outcome


def count_from(content: object, default: int, maximum: int) -> int:
    """A count from request content; anything that is not a positive number means default."""
    if isinstance(content, bool):
        return default
    if isinstance(content, int):
        value = content
    elif isinstance(content, str) and ASCII_DIGITS.fullmatch(content.strip()):
        value = int(content.strip()[:9])
    else:
        return default
    return max(1, min(value, maximum))


def _reason(reason: str) -> str:
    return f": {reason}" if reason else ""
