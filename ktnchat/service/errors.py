# Domain refusals as named exceptions, as ergo's errors.go does it.
# Rules: the message is what the user reads in the `error` response; the service turns
# every ChatError into an `error` reply at one edge (ChatService.handle), nowhere else.
from __future__ import annotations

from typing import Any


class ChatError(Exception):
    """A request the service refuses; str(error) is sent to the client."""


class NotLoggedIn(ChatError):
    def __init__(self, word: str) -> None:
        super().__init__(
            f"You must log in before '{word}': send login <username> (only login and help "
            "work before login)"
        )


class AlreadyLoggedIn(ChatError):
    def __init__(self, username: str) -> None:
        super().__init__(f"Already logged in as {username}; logout first to change name")


class InvalidUsername(ChatError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid username: {reason}")


class UsernameTaken(ChatError):
    def __init__(self, username: str) -> None:
        super().__init__(f"Username {username} is taken; choose another")


class UnknownRequest(ChatError):
    def __init__(self, word: str) -> None:
        shown = word if len(word) <= 40 else word[:40] + "..."
        super().__init__(f"Unknown request '{shown}'; send help to list the requests")


class BadContent(ChatError):
    """The content of a request is missing or of the wrong kind."""


class FloodRefused(ChatError):
    """A message refused for flooding; `notices` go to the room's moderators."""

    def __init__(self, text: str, notices: list[Any]) -> None:
        super().__init__(text)
        self.notices = notices


class StorageUnavailable(ChatError):
    def __init__(self, what: str) -> None:
        super().__init__(f"Storage unavailable, {what}")
