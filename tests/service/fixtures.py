# Shared harness for the service tests of rooms, accounts, moderation, private messages
# and flood control: a ChatService on MemoryStorage with a hand-advanced clock, sessions
# from distinct hosts, and helpers that say exactly who receives what.
#
# Password hashing costs ~50 ms per call. Accounts made only to set a test up are stored
# with a cheap but genuine PBKDF2 hash (1 iteration: verify_password honours the cost a
# stored hash names), so `member` logs in through the real password check in microseconds.
# `register` and `password` themselves always hash at full cost.
from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import time
from typing import Any, List, Optional, Set, Tuple

from ktnchat.protocol import Request, Response
from ktnchat.service import ChatService, Outcome, ServiceConfig, Session
from ktnchat.service.passwords import verify_password
from ktnchat.storage import Account, MemoryStorage

T0 = time.mktime((2017, 3, 10, 12, 34, 56, 0, 0, -1))
ADMIN_SECRET = "correct-horse-battery"
PASSWORD = "s3cret-pass"


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@functools.cache
def password_hash(password: str = PASSWORD) -> str:
    """A stored-hash for `password` that is quick to verify (setup only)."""
    salt = b"fixture-salt-16b"
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, 1, 32)
    encoded = [base64.b64encode(part).decode("ascii") for part in (salt, digest)]
    stored = "pbkdf2_sha256$1$" + "$".join(encoded)
    assert verify_password(password, stored) and not verify_password(password + "x", stored)
    return stored


def kinds(outcome: Outcome) -> List[str]:
    return [r.kind for r in outcome.replies]


def only_error(outcome: Outcome) -> str:
    """The text of the single `error` reply; nothing else may happen."""
    assert kinds(outcome) == ["error"], outcome
    assert not outcome.broadcasts and not outcome.disconnect, outcome
    return outcome.replies[0].content


def only_info(outcome: Outcome) -> Response:
    """The single `info` reply (broadcasts are allowed)."""
    assert kinds(outcome) == ["info"], outcome
    return outcome.replies[0]


def delivered(outcome: Outcome, session: Session) -> List[Response]:
    """What `session` receives through the outcome's broadcasts (not the replies)."""
    got = []
    for broadcast in outcome.broadcasts:
        assert broadcast.recipients is not None, "broadcasts name their recipients"
        if session in broadcast.recipients and broadcast.exclude is not session:
            got.append(broadcast.response)
    return got


def events(outcome: Outcome, session: Session) -> List[Any]:
    """The `event` keys of the infos `session` receives through broadcasts."""
    return [r.extra.get("event") for r in delivered(outcome, session) if r.kind == "info"]


def audience(outcome: Outcome, event: str) -> Set[Optional[str]]:
    """The usernames receiving the broadcast info(s) with this event."""
    names: Set[Optional[str]] = set()
    for broadcast in outcome.broadcasts:
        if broadcast.response.kind == "info" and broadcast.response.extra.get("event") == event:
            assert broadcast.recipients is not None
            names |= {s.username for s in broadcast.recipients}
    return names


def contents(history: Response) -> List[str]:
    assert history.kind == "history"
    return [m.content for m in history.content]


class Chat:
    """A service, its store and clock, and shortcuts for driving it."""

    def __init__(self, admin_secret: Optional[str] = ADMIN_SECRET, **config: Any) -> None:
        self.clock = Clock()
        self.storage = MemoryStorage()
        self.service = ChatService(
            self.storage, ServiceConfig(**config), clock=self.clock, admin_secret=admin_secret
        )
        self._hosts = itertools.count(2)

    def connect(self, host: Optional[str] = None) -> Session:
        """A new logged-out session, from a host of its own unless one is named."""
        host = host or f"10.0.0.{next(self._hosts)}"
        return self.service.open_session(f"{host}:40000", host=host)

    def send(self, session: Session, word: str, content: Any = None) -> Outcome:
        return self.service.handle(session, Request(word, content))

    def login(self, name: str, host: Optional[str] = None) -> Session:
        """A plain login (no password); asserts it worked."""
        session = self.connect(host)
        outcome = self.send(session, "login", name)
        assert kinds(outcome) == ["info", "history"], outcome
        return session

    def account(self, name: str, password: str = PASSWORD) -> None:
        """Register `name` directly in the store (setup, not the behaviour under test)."""
        assert self.storage.create_account(Account(name, password_hash(password), T0))

    def member(self, name: str, host: Optional[str] = None) -> Session:
        """A registered user logged in with the password (roles count for it)."""
        if self.storage.get_account(name) is None:
            self.account(name)
        session = self.connect(host)
        outcome = self.send(session, "login", f"{name} {PASSWORD}")
        assert kinds(outcome) == ["info", "history"], outcome
        assert session.authenticated
        return session

    def admin(self, name: str, host: Optional[str] = None) -> Session:
        session = self.login(name, host)
        outcome = self.send(session, "admin", ADMIN_SECRET)
        assert only_info(outcome).extra["event"] == "admin"
        assert session.admin
        return session

    def create(self, session: Session, room: str, topic: str = "") -> Outcome:
        outcome = self.send(session, "create", f"{room} {topic}".strip())
        assert kinds(outcome) == ["info", "history"], outcome
        return outcome

    def join(self, session: Session, room: str) -> Outcome:
        outcome = self.send(session, "join", room)
        assert kinds(outcome) == ["info", "history"], outcome
        return outcome

    def say(self, session: Session, text: str) -> int:
        """Send a message; returns its id."""
        outcome = self.send(session, "msg", text)
        [broadcast] = outcome.broadcasts
        return broadcast.response.extra["id"]

    def history(self, session: Session) -> List[str]:
        [history] = self.send(session, "history", "100").replies
        return contents(history)

    def owned_room(self, room: str = "den") -> Tuple[Session, Session]:
        """An owner (registered, logged in with the password) in a room of their own, and
        a registered moderator of it, logged in with the password, in the room too."""
        owner = self.member("olivia")
        self.create(owner, room)
        self.account("mike")
        assert self.send(owner, "mod", "mike").broadcasts
        mod = self.member("mike")
        self.join(mod, room)
        return owner, mod
