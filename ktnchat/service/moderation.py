# Moderation: kick, mute, ban (room, server-wide, by address), remove and purge messages,
# name moderators, and the moderation log. Handlers are `cmd_<word>` methods.
# Rules: moderators act in their current room, admins anywhere; nobody acts on someone of
# equal or higher rank (a moderator cannot kick the owner). Bans are persisted before
# they take effect and cached in memory; every action is logged and stored (audit).
# Live clients are told of removals by an `info` carrying the removed ids ("deleted").
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

from ktnchat.protocol import Request
from ktnchat.service.accounts import AccountCommands
from ktnchat.service.chat import ASCII_DIGITS, split_first
from ktnchat.service.commands import ADMIN, MODERATOR, OWNER, RANK_NAMES
from ktnchat.service.errors import BadContent, ChatError
from ktnchat.service.names import validate_username
from ktnchat.service.outcome import Outcome
from ktnchat.service.session import Session
from ktnchat.service.state import ADDRESS_BAN, FOREVER, NAME_BAN, LiveRoom
from ktnchat.service.text import scrub_controls
from ktnchat.storage import SERVER_WIDE, Ban, key

DEFAULT_MUTE_MINUTES = 10.0


class ModerationCommands(AccountCommands):
    """kick, mute, unmute, ban, unban, gban, gunban, ipban, ipunban, bans, remove, purge,
    mod, unmod, modlog."""

    # -- helpers ------------------------------------------------------------------------

    def target(self, request: Request, what: str) -> Tuple[str, str]:
        """The user a command names and the rest of its text (a reason, a count)."""
        name, rest = split_first(request.content)
        if not name:
            raise BadContent(f"Name a user: {what}")
        name = validate_username(name, self.config.max_username_chars, underscores=True)
        return name, scrub_controls(rest or "").replace("\n", " ")[:200]

    def outrank(self, session: Session, room: LiveRoom, name: str) -> None:
        """Refuse unless the actor's rank in `room` is above the target's."""
        mine, theirs = self.rank(session, room), self.name_rank(name, room)
        if mine <= theirs:
            raise ChatError(f"{name} is {RANK_NAMES[theirs]} here; you cannot do that")

    def remove_from_room(
        self, by: str, room: LiveRoom, target: Session, why: str, outcome: Outcome
    ) -> None:
        """Send `target` out of `room`: to the lobby, or out of the chat if this is the lobby."""
        if target.room != room.key:
            return
        now = self.clock()
        if self.is_default(room) or self.bans.name_ban(
            key(self.config.default_room), target.username or "", now
        ):
            outcome.tell(
                target,
                self.info(
                    f"{why}; you are logged out",
                    event="kicked",
                    room=room.name,
                    by=by,
                ),
            )
            self.leave_chat(target, f"was removed from the chat by {by}", outcome)
            return
        lobby = self.live_room(self.config.default_room)
        assert lobby is not None
        outcome.tell(
            target,
            self.info(
                f"{why}; you are back in {lobby.name}",
                event="kicked",
                room=room.name,
                by=by,
            ),
        )
        outcome.tell(target, self.joined_info(lobby, f"You are in {lobby.name}"))
        self.enter_room(target, lobby, outcome, direct=False)

    # -- kick / mute ------------------------------------------------------------------------

    def cmd_kick(self, session: Session, request: Request) -> Outcome:
        name, reason = self.target(request, "kick <user> [reason]")
        room = self.current_room(session)
        target = self.presence.holder(name)
        elsewhere = self.remote_room(name) if target is None else None
        if (target is None or target.room != room.key) and elsewhere != room.key:
            raise ChatError(f"{name} is not in {room.name}")
        self.outrank(session, room, name)
        outcome = Outcome()
        why = f"You were kicked from {room.name} by {session.username}{_because(reason)}"
        if target is not None:
            self.remove_from_room(session.username or "", room, target, why, outcome)
        else:  # held by another worker: it carries the kick out
            outcome.remote.append(_act(name, "remove", room=room.key, why=why, by=session.username))
        shown = target.username if target is not None and target.username else name
        outcome.broadcasts.append(
            self.tell_room(
                room,
                f"{shown} was kicked by {session.username}{_because(reason)}",
                event="kick",
                username=shown,
                by=session.username,
            )
        )
        self.audit(session, "kick", name, room.name, reason)
        return outcome.reply(self.info(f"Kicked {name} from {room.name}"))

    def cmd_mute(self, session: Session, request: Request) -> Outcome:
        name, rest = self.target(request, "mute <user> [minutes]")
        minutes = DEFAULT_MUTE_MINUTES
        if rest:
            try:
                minutes = float(rest.split()[0])
            except ValueError:
                raise BadContent("mute <user> [minutes]: minutes must be a number") from None
            if not math.isfinite(minutes) or minutes < 0:
                raise BadContent("minutes must be 0 (until unmuted) or more")
        room = self.current_room(session)
        self.outrank(session, room, name)
        until = FOREVER if minutes == 0 else self.clock() + minutes * 60
        with self.presence.lock:
            room.mutes[key(name)] = until
        span = "until unmuted" if minutes == 0 else f"for {minutes:g} minutes"
        outcome = Outcome()
        outcome.remote.append(
            _state("mute", room=room.key, name=key(name), until=None if until == FOREVER else until)
        )
        target = self.presence.holder(name)
        if target is None or target.room == room.key:
            self.tell_user(
                outcome,
                name,
                self.info(
                    f"You are muted in {room.name} {span} by {session.username}: you may read but "
                    "not send",
                    event="muted",
                    room=room.name,
                    by=session.username,
                ),
            )
        outcome.broadcasts.append(
            self.tell_room(
                room, f"{name} was muted {span} by {session.username}", event="mute", username=name
            )
        )
        self.audit(session, "mute", name, room.name, span)
        return outcome

    def cmd_unmute(self, session: Session, request: Request) -> Outcome:
        name, _ = self.target(request, "unmute <user>")
        room = self.current_room(session)
        target = self.presence.holder(name)
        with self.presence.lock:
            was = room.mutes.pop(key(name), None)
            flood = None
            if target is not None and target.room == room.key:
                # A flood mute is lifted by a moderator of the room the flooder is in.
                flood = self.flood_mutes.pop(key(name), None)
                if target.flood is not None and target.flood.muted_until:
                    target.flood.lift_mute()
                    flood = flood or 1.0
        if was is None and flood is None and self.cluster is None:
            raise ChatError(f"{name} is not muted in {room.name}")
        outcome = Outcome()
        outcome.remote.append(_state("unmute", room=room.key, name=key(name)))
        outcome.broadcasts.append(
            self.tell_room(
                room, f"{name} was unmuted by {session.username}", event="unmute", username=name
            )
        )
        self.audit(session, "unmute", name, room.name, "")
        return outcome

    # -- bans ---------------------------------------------------------------------------------

    def cmd_ban(self, session: Session, request: Request) -> Outcome:
        name, reason = self.target(request, "ban <user> [reason]")
        room = self.current_room(session)
        self.outrank(session, room, name)
        ban = Ban(room.key, NAME_BAN, key(name), session.username or "", reason, self.clock())
        self.stored("ban not saved", lambda: self.storage.add_ban(ban))
        with self.presence.lock:
            self.bans.add(ban)
        outcome = Outcome()
        outcome.remote.append(_ban_event("ban_add", ban))
        target = self.presence.holder(name)
        why = f"You are banned from {room.name} by {session.username}{_because(reason)}"
        if target is None and self.cluster is not None:
            outcome.remote.append(_act(name, "banned", room=room.key, why=why, by=session.username))
        if target is not None:
            if self.is_default(room) and target.room != room.key:
                # A lobby ban is a ban from the chat: out, wherever the user is.
                outcome.tell(
                    target,
                    self.info(
                        f"{why}; you are logged out",
                        event="kicked",
                        room=room.name,
                        by=session.username,
                    ),
                )
                self.leave_chat(target, f"was banned by {session.username}", outcome)
            else:
                self.remove_from_room(session.username or "", room, target, why, outcome)
        outcome.broadcasts.append(
            self.tell_room(
                room,
                f"{name} was banned from {room.name} by {session.username}{_because(reason)}",
                event="ban",
                username=name,
            )
        )
        self.audit(session, "ban", name, room.name, reason)
        return outcome.reply(self.info(f"Banned {name} from {room.name}"))

    def cmd_unban(self, session: Session, request: Request) -> Outcome:
        name, _ = self.target(request, "unban <user>")
        room = self.current_room(session)
        return self.lift(session, "unban", room.key, NAME_BAN, key(name), name, room.name)

    def lift(
        self,
        session: Session,
        action: str,
        scope: str,
        kind: str,
        target: str,
        shown: str,
        where: str,
    ) -> Outcome:
        removed = self.stored(
            "ban not lifted", lambda: self.storage.remove_ban(scope, kind, target)
        )
        with self.presence.lock:
            cached = self.bans.remove(scope, kind, target)
        if not removed and cached is None:
            raise ChatError(f"{shown} is not banned from {where}")
        outcome = Outcome()
        outcome.remote.append(_state("ban_del", scope=scope, ban_kind=kind, target=target))
        self.audit(session, action, shown, "" if scope == SERVER_WIDE else where, kind)
        return outcome.reply(self.info(f"Lifted the ban of {shown} from {where}"))

    def cmd_gban(self, session: Session, request: Request) -> Outcome:
        name, reason = self.target(request, "gban <user> [reason]")
        lobby = self.current_room(session)
        self.outrank(session, lobby, name)
        ban = Ban(SERVER_WIDE, NAME_BAN, key(name), session.username or "", reason, self.clock())
        self.stored("ban not saved", lambda: self.storage.add_ban(ban))
        with self.presence.lock:
            self.bans.add(ban)
        outcome = Outcome()
        outcome.remote.append(_ban_event("ban_add", ban))
        why = f"You are banned from this server{_because(reason)}"
        target = self.presence.holder(name)
        if target is not None and target is not session:
            outcome.disconnect.append((target, why))
        elif target is None and self.cluster is not None:
            outcome.remote.append(_act(name, "disconnect", why=why))
        self.audit(session, "gban", name, "", reason)
        return outcome.reply(self.info(f"Banned {name} from the server"))

    def cmd_gunban(self, session: Session, request: Request) -> Outcome:
        name, _ = self.target(request, "gunban <user>")
        return self.lift(session, "gunban", SERVER_WIDE, NAME_BAN, key(name), name, "the server")

    def cmd_ipban(self, session: Session, request: Request) -> Outcome:
        address, reason = split_first(request.content)
        if not address:
            raise BadContent("ipban <address> [reason]")
        reason = scrub_controls(reason or "")[:200]
        ban = Ban(SERVER_WIDE, ADDRESS_BAN, address, session.username or "", reason, self.clock())
        self.stored("ban not saved", lambda: self.storage.add_ban(ban))
        with self.presence.lock:
            self.bans.add(ban)
            doomed = [s for s in self.presence.sessions() if s.host == address and s is not session]
        outcome = Outcome()
        why = f"You are banned from this server{_because(reason)}"
        for target in doomed:
            outcome.disconnect.append((target, why))
        outcome.remote.append(_ban_event("ban_add", ban))
        outcome.remote.append(
            {"t": "act", "to": "*", "kind": "disconnect_address", "address": address, "why": why}
        )
        self.audit(session, "ipban", address, "", reason)
        return outcome.reply(self.info(f"Banned address {address} ({len(doomed)} disconnected)"))

    def cmd_ipunban(self, session: Session, request: Request) -> Outcome:
        address, _ = split_first(request.content)
        if not address:
            raise BadContent("ipunban <address>")
        return self.lift(
            session, "ipunban", SERVER_WIDE, ADDRESS_BAN, address, address, "the server"
        )

    def cmd_bans(self, session: Session, request: Request) -> Outcome:
        room = self.current_room(session)
        with self.presence.lock:
            bans = self.bans.listing(None if session.admin else room.key)
        if not bans:
            return Outcome().reply(self.info("No bans", bans=[]))
        lines = []
        for ban in bans:
            where = "server" if ban.scope == SERVER_WIDE else ban.scope
            lines.append(f"{ban.kind} {ban.target} in {where} by {ban.by}{_because(ban.reason)}")
        listing = [
            {
                "scope": b.scope or "server",
                "kind": b.kind,
                "target": b.target,
                "by": b.by,
                "reason": b.reason,
            }
            for b in bans
        ]
        outcome = Outcome()
        text = "Bans:\n" + "\n".join(lines)
        outcome.reply(self.info(text[: self.config.text_chunk_chars * 4], bans=listing))
        return outcome

    # -- messages -------------------------------------------------------------------------------

    def cmd_remove(self, session: Session, request: Request) -> Outcome:
        raw, _ = split_first(request.content)
        if not ASCII_DIGITS.fullmatch(raw):
            raise BadContent("remove <message id>: the id is the number shown with a message")
        message_id = int(raw[:18])
        message = self.stored("remove failed", lambda: self.storage.get_message(message_id))
        if message is None:
            raise ChatError(f"No message {message_id}")
        room = self.stored("remove failed", lambda: self.live_room(message.room))
        if room is None or self.rank(session, room) < MODERATOR:
            raise ChatError(f"Only moderators of {message.room} may remove its messages")
        removed = self.stored("remove failed", lambda: self.storage.delete_message(message_id))
        if removed is None:
            raise ChatError(f"No message {message_id}")
        self.audit(
            session, "remove", str(message_id), room.name, f"{message.sender}: {message.text[:80]}"
        )
        outcome = Outcome()
        outcome.broadcasts.append(
            self.tell_room(
                room,
                f"A message from {message.sender} was removed by {session.username}",
                event="removed",
                deleted=[message_id],
                by=session.username,
            )
        )
        return outcome

    def cmd_purge(self, session: Session, request: Request) -> Outcome:
        name, rest = self.target(request, "purge <user> [all]")
        everywhere = rest.strip().lower() == "all"
        room = self.current_room(session)
        if everywhere and self.rank(session, room) < ADMIN:
            raise ChatError("Only admins may purge a user's messages in every room")
        self.outrank(session, room, name)
        ids = self.stored(
            "purge failed",
            lambda: self.storage.delete_messages_by(name, None if everywhere else room.name),
        )
        where = "every room" if everywhere else room.name
        self.audit(session, "purge", name, "" if everywhere else room.name, f"{len(ids)} removed")
        outcome = Outcome()
        if ids:
            with self.presence.lock:
                rooms: List[LiveRoom] = list(self.rooms.values()) if everywhere else [room]
            for each in rooms:
                outcome.broadcasts.append(
                    self.tell_room(
                        each,
                        f"{len(ids)} message(s) from {name} were removed by {session.username}",
                        event="removed",
                        deleted=ids,
                        by=session.username,
                    )
                )
        return outcome.reply(self.info(f"Removed {len(ids)} message(s) of {name} in {where}"))

    # -- roles ----------------------------------------------------------------------------------

    def cmd_mod(self, session: Session, request: Request) -> Outcome:
        name, _ = self.target(request, "mod <user>")
        room = self.current_room(session)
        account = self.stored("moderator not named", lambda: self.storage.get_account(name))
        if account is None:
            raise ChatError(
                f"{name} must register first (register <password>): roles go to "
                "registered names only"
            )
        if not self.stored(
            "moderator not named", lambda: self.storage.add_moderator(room.name, account.name)
        ):
            raise ChatError(f"{account.name} is a moderator of {room.name} already")
        with self.presence.lock:
            room.moderators.add(key(account.name))
        self.audit(session, "mod", account.name, room.name, "")
        outcome = Outcome()
        outcome.remote.append(_state("mod", room=room.key, name=key(account.name)))
        outcome.broadcasts.append(
            self.tell_room(
                room,
                f"{account.name} is now a moderator of {room.name}",
                event="mod",
                username=account.name,
            )
        )
        return outcome

    def cmd_unmod(self, session: Session, request: Request) -> Outcome:
        name, _ = self.target(request, "unmod <user>")
        room = self.current_room(session)
        if not self.stored(
            "moderator not removed", lambda: self.storage.remove_moderator(room.name, name)
        ):
            raise ChatError(f"{name} is not a moderator of {room.name}")
        with self.presence.lock:
            room.moderators.discard(key(name))
        self.audit(session, "unmod", name, room.name, "")
        outcome = Outcome().reply(self.info(f"{name} is no longer a moderator of {room.name}"))
        outcome.remote.append(_state("unmod", room=room.key, name=key(name)))
        return outcome

    def cmd_modlog(self, session: Session, request: Request) -> Outcome:
        from ktnchat.service.chat import count_from

        limit = count_from(request.content, 20, 200)
        entries = self.stored(
            "moderation log not available", lambda: self.storage.list_audit(limit)
        )
        if not entries:
            return Outcome().reply(self.info("The moderation log is empty", entries=[]))
        lines = [
            f"#{e.id} {self.timestamp(e.created)} {e.actor} {e.action} {e.target}"
            f"{' in ' + e.room if e.room else ''}{_because(e.detail)}"
            for e in entries
        ]
        listing = [
            {
                "id": e.id,
                "created": self.timestamp(e.created),
                "actor": e.actor,
                "action": e.action,
                "target": e.target,
                "room": e.room,
                "detail": e.detail,
            }
            for e in entries
        ]
        return Outcome().reply(self.info("Moderation log:\n" + "\n".join(lines), entries=listing))


def _act(name: str, kind: str, **fields: Any) -> Dict[str, Any]:
    """A bus event: do `kind` to the user `name` on whichever worker holds it."""
    return {"t": "act", "to": key(name), "kind": kind, **fields}


def _state(kind: str, **fields: Any) -> Dict[str, Any]:
    """A bus event: every worker updates its caches."""
    return {"t": "state", "kind": kind, **fields}


def _ban_event(kind: str, ban: Ban) -> Dict[str, Any]:
    return _state(
        kind,
        scope=ban.scope,
        ban_kind=ban.kind,
        target=ban.target,
        by=ban.by,
        reason=ban.reason,
        created=ban.created,
        expires=ban.expires,
    )


def _because(reason: Optional[str]) -> str:
    return f": {reason}" if reason else ""


__all__ = ["OWNER", "ModerationCommands"]
