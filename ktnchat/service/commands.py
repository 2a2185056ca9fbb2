# The request table: every request word, its syntax and its precondition, in one place
# (like miniircd's handler_table and ergo's Commands). ChatService binds words to handlers.
# Rules: `needs_login` is checked once, before any handler runs; argument-less commands
# ignore whatever `content` the client sent (null, "", "None", stale text, missing).
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List


@dataclass(frozen=True)
class Command:
    word: str
    usage: str
    summary: str
    needs_login: bool = True
    uses_storage: bool = False  # may call the store: runs on the storage worker if it blocks


COMMANDS: Dict[str, Command] = {
    command.word: command
    for command in [
        Command(
            "login",
            "login <username>",
            "log in (letters and digits only)",
            needs_login=False,
            uses_storage=True,
        ),
        Command("logout", "logout", "log out; you stay connected and may log in again"),
        Command(
            "msg", "msg <message>", "send a message to everyone in the chat", uses_storage=True
        ),
        Command("names", "names", "list the users in the chat"),
        Command("history", "history [count]", "show the most recent messages", uses_storage=True),
        Command("help", "help", "show this text", needs_login=False),
        Command(
            "stream",
            "stream on|off",
            "let responses share TCP segments (for clients that parse a stream)",
            needs_login=False,
        ),
    ]
}


def help_lines(logged_in: bool) -> List[str]:
    """Usage lines of the commands a user in this state may send now."""
    return [
        f"{command.usage} - {command.summary}"
        for command in COMMANDS.values()
        if logged_in or not command.needs_login
    ]
