# The CS3560 dialect of the client (`--dialect cs3560`): the commands and printed outputs of
# the CS3560 Chatroom assignment (seed `004_…`), word for word, spoken over the KTN protocol.
#
# No published CS3560 wire format was found: the assignment specifies the client's commands
# and what it prints, and names the messages (login, list, sendto, logout; LIST, RESPONSE,
# SENDTO) without giving their bytes. So this mode maps the assignment's behaviour onto the
# KTN JSON protocol (docs/protocol.md); it is not a wire-compatible CS3560 client.
#
# Rules:
# - Commands, one per line, lower case, parameters separated by white space:
#   `login <username>` -> {"request":"login","content":NAME}; `list` -> `names` (while
#   logged out: ktnchat's `who`, since KTN refuses `names` before login);
#   `sendto <username> <message>` -> {"request":"sendto","content":"NAME MESSAGE"};
#   `logout` -> `logout` (the connection stays: list and login still work);
#   `exit` -> waits (at most EXIT_DRAIN_SECONDS) for the answers still due, closes the
#   socket and exits 0. End of input does the same.
# - Errors, printed exactly, and then nothing else is done (nothing is sent):
#   `Bad username` (login: no name, more than one word, more than 20 characters; sendto: a
#   parameter missing or a name of more than 20 characters), `Bad message` (sendto text of
#   more than 65,535 characters), `Invalid command` (list/logout/exit with parameters, any
#   other command word). Blank lines are ignored. Lengths count characters (code points).
# - Every request gets one printed answer, matched to the requests in order: an `error` is
#   RESPONSE failure -> `Failure`; the answer to `list` is the LIST message, printed as the
#   usernames separated by single spaces on one line (the server's own text when it gives no
#   list); any other answer (login/logout `info`, the private `message` echoed to the
#   sender of a sendto, and from other servers any info or unknown response) -> `Success`.
# - A private `message` from someone else is the SENDTO message: `<sender>: <text>`. Room
#   chatter (non-private messages, history, ktnchat infos carrying an `event` such as join
#   and leave notices) is not part of CS3560 and is never printed. Received text is
#   neutralised (control characters made visible; message text keeps its line breaks).
# - A ktnchat `names` answer split over several infos is printed once, from its `names` key
#   (on the first piece); the further pieces that follow at once (infos without extra keys
#   starting "Users in ROOM: ") are swallowed, not taken as answers to later requests.
# - `stream on` is never sent (nothing goes out that the user did not type); the server's
#   pacing is harmless here.
# - stdout carries only the assignment's outputs; diagnostics (cannot connect, connection
#   lost) go to stderr. Exit codes: 0 after exit or end of input (or when the server closes
#   after our logout), 1 for a lost connection, 2 when the connection cannot be made.
# - Lock step, as in the assignment (one answer per request): a typed line is handled only
#   once the answers to the requests before it came (or ANSWER_WAIT_SECONDS passed), so a
#   piped script prints its outputs in the order of its lines. Server events are handled
#   as they arrive. Always line mode (also on a terminal); one thread handles everything
#   (a reader thread only queues stdin lines, the connection's thread server events).
from __future__ import annotations

import queue
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Deque, Optional, TextIO, Union

from ktnchat.client.connection import ClientEvent, Connection, ConnectionLost
from ktnchat.client.render import neutralise
from ktnchat.client.typed import EndOfInput, TypedLine, start_reading
from ktnchat.protocol.lenient import (
    KIND_ERROR,
    KIND_HISTORY_ITEM,
    KIND_INFO,
    KIND_MESSAGE,
    ChatLine,
    Notice,
    Unreadable,
    event_name,
    is_private,
    is_stream_ack,
)

MAX_USERNAME_CHARS = 20
MAX_MESSAGE_CHARS = 65535
EXIT_DRAIN_SECONDS = 2.0  # the most `exit` / end of input waits for answers still due
ANSWER_WAIT_SECONDS = 5.0  # the most a typed line waits for the previous request's answer
CLOSE_LINGER_SECONDS = 0.5

BAD_USERNAME = "Bad username"
BAD_MESSAGE = "Bad message"
INVALID_COMMAND = "Invalid command"
SUCCESS = "Success"
FAILURE = "Failure"


# --- typed lines -------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """A request to send: the KTN request word, its content, and the sendto target."""

    word: str
    content: Optional[str]
    target: Optional[str] = None


@dataclass(frozen=True)
class Error:
    """A local error: print `message`, do nothing else."""

    message: str


@dataclass(frozen=True)
class Exit:
    pass


Command = Union[Request, Error, Exit]


def _split_word(text: str) -> tuple[str, str]:
    """("word", "rest") with the white space between them removed (rest may be "")."""
    parts = text.split(None, 1)
    if not parts:
        return "", ""
    return parts[0], (parts[1] if len(parts) > 1 else "")


def parse_line(line: str) -> Optional[Command]:
    """One typed line -> what to do; None for a blank line."""
    text = line.rstrip("\r\n").lstrip()
    if not text.strip():
        return None
    word, rest = _split_word(text)
    if word == "login":
        params = rest.split()
        if len(params) != 1 or len(params[0]) > MAX_USERNAME_CHARS:
            return Error(BAD_USERNAME)
        return Request("login", params[0])
    if word == "sendto":
        name, message = _split_word(rest)
        if not name or not message.strip() or len(name) > MAX_USERNAME_CHARS:
            return Error(BAD_USERNAME)
        if len(message) > MAX_MESSAGE_CHARS:
            return Error(BAD_MESSAGE)
        return Request("sendto", f"{name} {message}", target=name)
    if word in ("list", "logout", "exit"):
        if rest.strip():
            return Error(INVALID_COMMAND)
        if word == "exit":
            return Exit()
        return Request("names" if word == "list" else "logout", None)
    return Error(INVALID_COMMAND)


# --- the client --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Server:
    event: ClientEvent


class Cs3560Client:
    """One connection, the requests awaiting an answer, and what to print."""

    def __init__(self, host: str, port: int, out: TextIO, err: TextIO) -> None:
        self.host = host
        self.port = port
        self.inbox: queue.Queue[object] = queue.Queue()
        self.exit_code: Optional[int] = None
        self._out = out
        self._err = err
        self._conn: Optional[Connection] = None
        self._pending: Deque[Request] = deque()
        self._me: Optional[str] = None  # our username after a successful login
        self._logged_out = False  # the last request sent was logout
        self._names_prefix: Optional[str] = None  # "Users in ROOM: " after a names answer

    def connect(self) -> None:
        """Raises OSError if the connection cannot be made."""
        inbox = self.inbox
        self._conn = Connection.open(self.host, self.port, lambda e: inbox.put(_Server(e)))

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close(CLOSE_LINGER_SECONDS)

    def _print(self, text: str) -> None:
        try:
            self._out.write(text + "\n")
            self._out.flush()
        except (OSError, ValueError):
            pass

    def _diagnose(self, text: str) -> None:
        try:
            self._err.write(f"ktnchat: {text}\n")
            self._err.flush()
        except (OSError, ValueError):
            pass

    # typed lines

    def handle_line(self, line: str) -> None:
        """Act on one typed line (`exit` sets nothing here; see `run`)."""
        command = parse_line(line)
        if isinstance(command, Error):
            self._print(command.message)
        elif isinstance(command, Request):
            conn = self._conn
            if conn is not None and command.word == "names":
                conn.expect_names()  # before sending: the answer may come at once
            word = command.word
            if word == "names" and self._me is None:
                # Logged out: KTN refuses `names` before login; ktnchat's `who` lists everyone
                # online to anyone (other servers answer with an error: Failure).
                word = "who"
            if conn is None or not conn.send(word, command.content):
                self._print(FAILURE)  # the connection is gone: the request failed
                return
            self._logged_out = command.word == "logout"
            self._pending.append(command)

    # server events

    def handle_event(self, event: ClientEvent) -> None:
        prefix, self._names_prefix = self._names_prefix, None
        if prefix is not None and _continues_names(event, prefix):
            self._names_prefix = prefix
            return
        if isinstance(event, ConnectionLost):
            self._lost(event)
        elif isinstance(event, Unreadable):
            self._answer(None)
        elif isinstance(event, Notice) or event.kind == KIND_ERROR:
            self._answer(event)
        elif event.kind == KIND_MESSAGE:
            self._message(event)
        elif event.kind == KIND_HISTORY_ITEM:
            return  # the login history: room chatter
        elif event.kind == KIND_INFO:
            if event_name(event) is not None or is_stream_ack(event):
                return  # ktnchat notices (join, leave, kicked, shutdown, ...)
            self._answer(event)
        else:
            self._answer(event)  # an unknown response word answering a request

    def _message(self, event: ChatLine) -> None:
        if not is_private(event):
            return  # room chatter
        to = event.extra.get("to")
        from_us = self._me is not None and event.sender == self._me
        if from_us:
            head = self._pending[0] if self._pending else None
            if head is not None and head.word == "sendto" and _same(to, head.target):
                self._pending.popleft()
                self._print(SUCCESS)
        if not from_us or (isinstance(to, str) and to == self._me):
            sender = neutralise(event.sender or "", multiline=False)
            self._print(f"{sender}: {neutralise(event.text)}")

    def _answer(self, event: Union[ChatLine, Notice, None]) -> None:
        """`event` answers the oldest request awaiting an answer (if any)."""
        if not self._pending:
            return  # unsolicited: nothing to print in CS3560
        request = self._pending.popleft()
        if isinstance(event, ChatLine) and event.kind == KIND_ERROR:
            self._print(FAILURE)
        elif request.word == "names":
            self._print(_listing(event))
            extra = event.extra if isinstance(event, Notice) else {}
            room = extra.get("room")
            if isinstance(room, str) and isinstance(extra.get("names"), list):
                self._names_prefix = f"Users in {room}: "  # ktnchat: more pieces may follow
        else:
            if request.word == "login":
                name = event.extra.get("username") if event is not None else None
                self._me = name if isinstance(name, str) and name else request.content
            elif request.word == "logout":
                self._me = None
            self._print(SUCCESS)

    def _lost(self, lost: ConnectionLost) -> None:
        self._diagnose(f"connection lost: {lost.reason}")
        self.exit_code = 0 if self._logged_out else 1

    # the loop

    def run(self, stdin: TextIO) -> int:
        """Handle typed lines and server events until exit, end of input or a lost
        connection; returns the exit code. Always closes the connection."""
        start_reading(stdin, self.inbox)
        typed: Deque[object] = deque()  # lines (and the end of input) not handled yet
        sent_at = 0.0  # when the last request went out
        deadline: Optional[float] = None  # set once exit was typed or input ended
        try:
            while self.exit_code is None:
                now = time.monotonic()
                if deadline is not None:
                    if not self._pending or now >= deadline:
                        return 0
                    timeout: Optional[float] = deadline - now
                elif typed and self._pending and now < sent_at + ANSWER_WAIT_SECONDS:
                    timeout = sent_at + ANSWER_WAIT_SECONDS - now  # lock step: answer first
                elif typed:
                    item = typed.popleft()
                    if isinstance(item, EndOfInput) or (
                        isinstance(item, TypedLine) and isinstance(parse_line(item.text), Exit)
                    ):
                        deadline = now + EXIT_DRAIN_SECONDS
                    elif isinstance(item, TypedLine):
                        before = len(self._pending)
                        self.handle_line(item.text)
                        if len(self._pending) > before:
                            sent_at = now
                    continue
                else:
                    timeout = None
                try:
                    item = self.inbox.get(timeout=timeout)
                except queue.Empty:
                    continue
                if isinstance(item, _Server):
                    self.handle_event(item.event)
                else:
                    typed.append(item)
            return self.exit_code
        finally:
            self.close()


def _same(to: object, target: Optional[str]) -> bool:
    """The echo's `to` names the target (servers may fix the case); absent counts too."""
    if not isinstance(to, str) or target is None:
        return True
    return to.casefold() == target.casefold()


def _continues_names(event: ClientEvent, prefix: str) -> bool:
    """A further piece of a ktnchat names answer: an info with no extra keys, same prefix."""
    if isinstance(event, Notice) or (isinstance(event, ChatLine) and event.kind == KIND_INFO):
        return not event.extra and event.text.startswith(prefix)
    return False


def _listing(event: Union[ChatLine, Notice, None]) -> str:
    """The LIST message as one line: the usernames separated by spaces."""
    if isinstance(event, Notice) and event.names is not None:
        return neutralise(" ".join(event.names), multiline=False)
    if event is None:
        return ""
    return neutralise(event.text, multiline=False)


def run(host: str, port: int, stdin: Optional[TextIO] = None) -> int:
    """Connect and run the CS3560 dialect on stdin/stdout; returns the exit code."""
    client = Cs3560Client(host, port, sys.stdout, sys.stderr)
    try:
        client.connect()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        print(f"ktnchat: cannot connect to {host}:{port}: {reason}", file=sys.stderr)
        return 2
    try:
        return client.run(stdin or sys.stdin)
    except KeyboardInterrupt:
        client.close()
        return 130
