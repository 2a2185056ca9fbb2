# Domain refusals as named exceptions, as ergo's errors.go does it.
# Rules: the message is what the user reads in the `error` response; the service turns
# every ChatError into an `error` reply at one edge (ChatService.handle), nowhere else.
from __future__ import annotations

from typing import Any


class ChatError(Exception):
    """A request the service refuses; str(error) is sent to the client.

    `code` is a stable machine-readable tag, sent as the extra key "code" of the `error`
    (clients may rely on it; texts may change)."""

    code = "refused"


class NotLoggedIn(ChatError):
    code = "not_logged_in"

    def __init__(self, word: str) -> None:
        super().__init__(
            f"You must log in before '{word}': send login <username> (only login and help "
            "work before login)"
        )


class AlreadyLoggedIn(ChatError):
    code = "already_logged_in"

    def __init__(self, username: str) -> None:
        super().__init__(f"Already logged in as {username}; logout first to change name")


class InvalidUsername(ChatError):
    code = "invalid_username"

    def __init__(self, reason: str) -> None:
        super().__init__(f"Invalid username: {reason}")


class UsernameTaken(ChatError):
    code = "name_taken"

    def __init__(self, username: str) -> None:
        super().__init__(f"Username {username} is taken; choose another")


class UnknownRequest(ChatError):
    code = "unknown_request"

    def __init__(self, word: str) -> None:
        shown = word if len(word) <= 40 else word[:40] + "..."
        super().__init__(f"Unknown request '{shown}'; send help to list the requests")


class BadContent(ChatError):
    """The content of a request is missing or of the wrong kind."""

    code = "bad_content"


class FloodRefused(ChatError):
    """A message refused for flooding; `notices` go to the room's moderators."""

    code = "flood"

    def __init__(self, text: str, notices: list[Any]) -> None:
        super().__init__(text)
        self.notices = notices


class StorageUnavailable(ChatError):
    code = "storage_unavailable"

    def __init__(self, what: str) -> None:
        super().__init__(f"Storage unavailable, {what}")
