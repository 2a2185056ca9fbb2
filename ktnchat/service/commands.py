# The request table: every request word, its syntax, who may send it and where it runs,
# in one place (like miniircd's handler_table and ergo's Commands). ChatService binds each
# word to its `cmd_<word>` method.
# Rules: `needs_login` and `rank` are checked once, before any handler runs (rank is the
# least role needed in the user's current room: 0 user, 1 moderator, 2 owner, 3 admin;
# handlers re-check where the target room differs). Argument-less commands ignore
# whatever `content` the client sent (null, "", "None", stale text, missing).
# `uses_storage` commands may call the store and run on the storage worker when it can
# block; `cpu_heavy` ones (password hashing) always run there.
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

USER, MODERATOR, OWNER, ADMIN = range(4)
RANK_NAMES = {USER: "user", MODERATOR: "moderator", OWNER: "owner", ADMIN: "admin"}


@dataclass(frozen=True)
class Command:
    word: str
    usage: str
    summary: str
    needs_login: bool = True
    rank: int = USER
    uses_storage: bool = False
    cpu_heavy: bool = False
    group: str = "chat"


def _table(*commands: Command) -> Dict[str, Command]:
    return {command.word: command for command in commands}


COMMANDS: Dict[str, Command] = _table(
    # The 2017 edition's requests (seed 001), plus history.
    Command(
        "login",
        "login <username> [password]",
        "log in (letters and digits only)",
        needs_login=False,
        uses_storage=True,
    ),
    Command("logout", "logout", "log out; you stay connected and may log in again"),
    Command("msg", "msg <message>", "send a message to your current room", uses_storage=True),
    Command("names", "names", "list the users in your current room"),
    Command("history", "history [count]", "show the room's recent messages", uses_storage=True),
    Command("help", "help", "show this text", needs_login=False),
    Command("who", "who", "list everyone online (also before login)", needs_login=False),
    Command("sendto", "sendto <user> <message>", "send a private message (seed 004)"),
    Command(
        "stream",
        "stream on|off",
        "let responses share TCP segments (for clients that parse a stream)",
        needs_login=False,
    ),
    # Rooms.
    Command(
        "rooms",
        "rooms",
        "list the rooms with their members and topics",
        uses_storage=True,
        group="rooms",
    ),
    Command(
        "join",
        "join <room>",
        "go to a room (replays its recent messages)",
        uses_storage=True,
        group="rooms",
    ),
    Command("leave", "leave", "go back to the lobby", uses_storage=True, group="rooms"),
    Command(
        "create",
        "create <room> [topic]",
        "create a room, owned by you, and join it",
        uses_storage=True,
        group="rooms",
    ),
    Command(
        "topic",
        "topic [text]",
        "show the room's topic; moderators may set it",
        uses_storage=True,
        group="rooms",
    ),
    Command(
        "deleteroom",
        "deleteroom <room>",
        "delete a room and its messages",
        rank=OWNER,
        uses_storage=True,
        group="rooms",
    ),
    # Accounts and privileges.
    Command(
        "register",
        "register <password>",
        "protect your name: from now on it needs this password to log in",
        uses_storage=True,
        cpu_heavy=True,
        group="account",
    ),
    Command(
        "password",
        "password <old> <new>",
        "change your password",
        uses_storage=True,
        cpu_heavy=True,
        group="account",
    ),
    Command(
        "admin",
        "admin <secret>",
        "prove the server's admin secret",
        uses_storage=True,
        group="account",
    ),
    # Moderation (in your current room; admins anywhere).
    Command(
        "kick",
        "kick <user> [reason]",
        "send a user out of this room",
        rank=MODERATOR,
        uses_storage=True,
        group="moderation",
    ),
    Command(
        "mute",
        "mute <user> [minutes]",
        "stop a user from sending here",
        rank=MODERATOR,
        uses_storage=True,
        group="moderation",
    ),
    Command(
        "unmute",
        "unmute <user>",
        "let a muted user send again",
        rank=MODERATOR,
        uses_storage=True,
        group="moderation",
    ),
    Command(
        "ban",
        "ban <user> [reason]",
        "ban a user from this room",
        rank=MODERATOR,
        uses_storage=True,
        group="moderation",
    ),
    Command(
        "unban",
        "unban <user>",
        "lift a ban from this room",
        rank=MODERATOR,
        uses_storage=True,
        group="moderation",
    ),
    Command(
        "bans",
        "bans",
        "list the bans of this room (admins: all bans)",
        rank=MODERATOR,
        group="moderation",
    ),
    Command(
        "remove",
        "remove <message id>",
        "remove a message",
        rank=MODERATOR,
        uses_storage=True,
        group="moderation",
    ),
    Command(
        "purge",
        "purge <user> [all]",
        "remove all of a user's messages here (all: everywhere)",
        rank=MODERATOR,
        uses_storage=True,
        group="moderation",
    ),
    Command(
        "mod",
        "mod <user>",
        "make a registered user a moderator of this room",
        rank=OWNER,
        uses_storage=True,
        group="moderation",
    ),
    Command(
        "unmod",
        "unmod <user>",
        "take a moderator's role away",
        rank=OWNER,
        uses_storage=True,
        group="moderation",
    ),
    Command(
        "gban",
        "gban <user> [reason]",
        "ban a user from the whole server",
        rank=ADMIN,
        uses_storage=True,
        group="admin",
    ),
    Command(
        "gunban",
        "gunban <user>",
        "lift a server-wide ban",
        rank=ADMIN,
        uses_storage=True,
        group="admin",
    ),
    Command(
        "ipban",
        "ipban <address> [reason]",
        "ban an address from the whole server",
        rank=ADMIN,
        uses_storage=True,
        group="admin",
    ),
    Command(
        "ipunban",
        "ipunban <address>",
        "lift an address ban",
        rank=ADMIN,
        uses_storage=True,
        group="admin",
    ),
    Command(
        "modlog",
        "modlog [count]",
        "list recent moderator actions",
        rank=ADMIN,
        uses_storage=True,
        group="admin",
    ),
)

# Words some real clients send for the same requests (be liberal in what you accept).
ALIASES: Dict[str, str] = {"users": "names", "listusers": "names", "list": "names"}


def allowed_commands(logged_in: bool, rank: int) -> List[Command]:
    """The commands a user in this state may send now, in table order."""
    return [
        command
        for command in COMMANDS.values()
        if (logged_in or not command.needs_login) and (rank >= command.rank)
    ]


def help_lines(logged_in: bool, rank: int) -> List[str]:
    """Usage lines of the commands a user in this state may send now."""
    return [f"{command.usage} - {command.summary}" for command in allowed_commands(logged_in, rank)]


def allowed_words(logged_in: bool, rank: int) -> List[str]:
    """The request words a user in this state may send now."""
    return [command.word for command in allowed_commands(logged_in, rank)]
