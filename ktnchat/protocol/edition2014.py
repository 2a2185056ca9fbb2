# The 2014 edition of the KTN protocol (seed 000), spoken on the same port as 2017.
#
# Rules:
# - Requests: {"request":"login","username":U}, {"request":"message","message":M},
#   {"request":"logout"}; real 2014 clients also send "users" / "listUsers". They become
#   ordinary 2017 Requests (login, msg, logout, names) marked edition 2014, so the service
#   never sees the older shape.
# - Responses: a 2017 Response is turned into the 2014 object for the same event, with the
#   seed's error strings exactly as written. The service tags its errors with a machine
#   code (extra key "code"), so this never parses human text.
# - A login answer is one object in 2014 ({"response":"login","username":…,"messages":[…]}),
#   so the writer holds the login `info` until the `history` that follows it.
# - Broadcast messages read "<username> said @ <timestamp>: <message>", as the seed suggests.
from __future__ import annotations

import enum
import json
from typing import Any, Dict, List, Optional

from ktnchat.protocol.events import ERROR, HISTORY, INFO, MESSAGE, Request, Response

EDITION_2014 = 2014
NAMES_WORDS = ("users", "listusers")
INVALID_USERNAME = "Invalid username!"
NAME_TAKEN = "Name already taken!"
MESSAGE_NOT_LOGGED_IN = "You are not logged in!"
LOGOUT_NOT_LOGGED_IN = "Not logged in!"


class BacklogEncoding(enum.Enum):
    """How the `messages` list of a 2014 login answer holds the backlog.

    PLAIN: each message as the text "<user> said @ <timestamp>: <message>" (kills one of
        the 3 measured 2014 clients, which json-decodes every entry).
    JSON: each message as a JSON string of {"response": "message", "message": text}; all
        3 measured 2014 clients survive it (one prints each decoded entry's "message",
        one prints the entry, one ignores the backlog). The default.
    """

    PLAIN = "plain"
    JSON = "json"


def is_2014_request(value: Dict[str, Any]) -> bool:
    """True for the shapes only the 2014 edition uses (no "content", a "username" or
    "message" key, or the request words "message", "users", "listUsers")."""
    if "content" in value:  # asked first: every 2017 request has it
        return False
    word = value.get("request")
    if not isinstance(word, str):
        return False
    word = word.strip().lower()
    return "username" in value or "message" in value or word in ("message", *NAMES_WORDS)


def request_from_2014(value: Dict[str, Any]) -> Request:
    """The 2017 request for a 2014-shaped one."""
    word = str(value.get("request", "")).strip().lower()
    if word == "login":
        return Request("login", value.get("username"), edition=EDITION_2014)
    if word == "message":
        return Request("msg", value.get("message"), edition=EDITION_2014)
    if word in NAMES_WORDS:
        # The answer echoes the word exactly as sent ("listUsers"): a client that sent it
        # matches the response word it expects, case and all.
        sent = str(value.get("request", "")).strip()
        return Request("names", None, edition=EDITION_2014, alias=sent)
    return Request(word, value.get("content"), edition=EDITION_2014)


def said(sender: str, timestamp: str, text: str, private: bool = False) -> str:
    who = f"{sender} (privately)" if private else sender
    return f"{who} said @ {timestamp}: {text}"


def broadcast_object(response: Response) -> Optional[Dict[str, Any]]:
    """The 2014 object for a response sent to many (messages and notices); None to skip."""
    if response.kind == MESSAGE:
        text = said(
            response.sender,
            response.timestamp,
            response.content,
            bool(response.extra.get("private")),
        )
        return {"response": "message", "message": text}
    if response.kind == INFO:
        return {"response": "message", "message": response.content}
    return None  # errors and histories are never broadcast


class Edition2014Writer:
    """Per-connection translation of the answers to one 2014 client."""

    def __init__(self, backlog: BacklogEncoding = BacklogEncoding.JSON) -> None:
        self.backlog = backlog
        self.pending_login: Optional[str] = None  # a login info waiting for its history
        self.names_word = "users"

    def reply_objects(self, response: Response) -> List[Dict[str, Any]]:
        """The 2014 objects answering this client's own request (maybe none yet)."""
        extra = response.extra
        if response.kind == INFO and "server" in extra and "username" in extra:
            self.pending_login = str(extra["username"])
            return []
        if response.kind == HISTORY:
            if self.pending_login is None:
                return [broadcast_object(m) or {} for m in response.messages]
            name, self.pending_login = self.pending_login, None
            return [
                {
                    "response": "login",
                    "username": name,
                    "messages": [self._backlog_entry(m) for m in response.messages],
                }
            ]
        if response.kind == ERROR:
            return [self._error(response)]
        if response.kind == INFO and "names" in extra:
            return [{"response": self.names_word, "users": list(extra["names"])}]
        if response.kind == INFO and extra.get("event") is None and "username" in extra:
            return [{"response": "logout", "username": extra["username"]}]
        obj = broadcast_object(response)
        return [obj] if obj is not None else []

    def _backlog_entry(self, message: Response) -> str:
        text = said(message.sender, message.timestamp, message.content)
        if self.backlog is BacklogEncoding.JSON:
            return json.dumps({"response": "message", "message": text})
        return text

    def _error(self, response: Response) -> Dict[str, Any]:
        code = response.extra.get("code")
        word = response.extra.get("request")
        if code == "invalid_username":
            return {
                "response": "login",
                "error": INVALID_USERNAME,
                "username": response.extra.get("username"),
            }
        if code == "name_taken":
            return {
                "response": "login",
                "error": NAME_TAKEN,
                "username": response.extra.get("username"),
            }
        if code == "not_logged_in" and word == "logout":
            return {"response": "logout", "error": LOGOUT_NOT_LOGGED_IN, "username": None}
        if code == "not_logged_in":
            return {"response": "message", "error": MESSAGE_NOT_LOGGED_IN}
        if word == "login":
            return {
                "response": "login",
                "error": response.content,
                "username": response.extra.get("username"),
            }
        if word == "logout":
            return {"response": "logout", "error": response.content, "username": None}
        return {"response": "message", "error": response.content}
