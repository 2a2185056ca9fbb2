# The client's state machine, shared by the plain and the terminal front ends.
#
# Rules:
# - Front ends feed it typed lines (`handle_line`) and items from `inbox` (`handle_item`);
#   it sends requests, decides what to show, and calls `output` with Rendered lines.
# - Connections put their events into `inbox` tagged with a generation number, so events
#   from a replaced connection are ignored.
# - Every 2017 login carries the extra key "stream": "on" (ktnchat then sends the login
#   history as a `history` response; other servers ignore the key), and `stream on` is
#   also sent once per connection after a login info advertises "stream" (older ktnchat
#   servers); the acknowledging info is never shown.
# - The edition (ktnchat/client/edition.py) decides the shape of every request and how
#   answers are read: in 2014, requests go through ktnchat/client/edition2014.py (commands
#   it has no request for are refused locally) and answers are translated before they are
#   shown. A fall-back to 2014 is one notice line, then the login again in the 2014 shape,
#   on a new connection (one immediate attempt) if the server closed, followed by the
#   requests typed while the first login waited for its answer (a piped script runs
#   ahead of the server), now in the 2014 shape; the same refusal repeated for each of
#   those 2017-shaped requests is not shown again. A close while that login waits is a
#   fall-back even after a typed-ahead logout.
# - When the session is over, `exit_code` is set: 0 after quit or when the server closed
#   after our logout, 1 for a lost connection (after the bounded reconnect attempts).
# - Reconnect waits (backoff) use an Event, so `stop()` cuts them short.
# - It remembers what the server revealed: usernames, room names, the current room (from
#   `joined` infos and any info naming our room; cleared by logout, a kick out of it or a
#   lost connection) and the last RECENT_MESSAGES messages with ids (so a removal can say
#   what was removed). Each event is rendered first, then remembered.
# - Lines marked secret (passwords) are sent and never echoed.
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Set

from ktnchat.client.commands import Quit, Send, Usage, parse_command
from ktnchat.client.connection import ClientEvent, Connection, ConnectionLost
from ktnchat.client.edition import AUTO, EDITION_2014, EditionTracker, gist
from ktnchat.client.edition2014 import NAMES_NOTE, Refused, events_2014, request_2014
from ktnchat.client.render import RecentMessages, Rendered, render_event, render_local
from ktnchat.protocol.lenient import (
    ChatLine,
    ServerEvent,
    deleted_ids,
    entered_room,
    features_of,
    is_stream_ack,
    left_room,
    listed_rooms,
    room_names_in,
    usernames_in,
)

RECONNECT_ATTEMPTS = 5
RECONNECT_FIRST_DELAY = 0.5
RECONNECT_MAX_DELAY = 8.0


@dataclass(frozen=True)
class Incoming:
    """An event from connection number `generation`."""

    generation: int
    event: ClientEvent


class ClientSession:
    """Client state: the connection, login name, features, usernames and rooms seen."""

    def __init__(
        self,
        host: str,
        port: int,
        output: Callable[[Rendered], None],
        *,
        show_ids: bool = False,
        reconnect: bool = False,
        edition: str = AUTO,
    ) -> None:
        self.host = host
        self.port = port
        self.inbox: queue.Queue[object] = queue.Queue()
        self.usernames: Set[str] = set()
        self.rooms: Set[str] = set()  # room names seen (for completion)
        self.room: Optional[str] = None  # the current room, when the server said it
        self.recent = RecentMessages()
        self.exit_code: Optional[int] = None
        self.last_received = time.monotonic()
        self._output = output
        self._show_ids = show_ids
        self._reconnect = reconnect
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._conn: Optional[Connection] = None
        self._generation = 0
        self._login: Optional[str] = None  # content of the last login sent
        self._logout_sent = False
        self._stream_sent = False
        self.editions = EditionTracker(edition)
        self._names_noted = False  # told that 2014 has no names request
        self._typed_ahead: List[Send] = []  # sent while a login waits (editions.waiting)
        self._refusal: Optional[str] = None  # the gist of the refusal that switched to 2014
        self._refusals_due = 0  # ... still due for the typed-ahead 2017 requests

    def known_names(self, *, rooms: bool = False) -> List[str]:
        """A sorted copy of the usernames (or room names) seen, safe from any thread."""
        with self._lock:
            names = list(self.rooms if rooms else self.usernames)
        return sorted(names, key=lambda name: (name.lower(), name))

    # --- connection ------------------------------------------------------------------

    def connect(self) -> None:
        """Open a (new) connection. Raises OSError if it cannot be made."""
        with self._lock:
            self._generation += 1
            generation = self._generation
            inbox = self.inbox
            self._conn = Connection.open(
                self.host, self.port, lambda event: inbox.put(Incoming(generation, event))
            )
            self._stream_sent = False

    def stop(self, linger: float = 0.5) -> None:
        """Close the connection (if any) and cut reconnect waits short."""
        self._stop.set()
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close(linger)

    def _send(self, word: str, content: Optional[str], *, raw: bool = False) -> bool:
        """Send one request in the edition spoken now."""
        conn = self._conn
        if conn is None or not conn.alive:
            self._output(render_local("not connected", "warning"))
            return False
        if self.editions.edition == EDITION_2014:
            return self._send_2014(conn, word, content, raw)
        if word == "names":
            conn.expect_names()
        if word == "login" and not raw:
            return conn.send(word, content, stream="on")
        return conn.send(word, content)

    def _send_2014(self, conn: Connection, word: str, content: Optional[str], raw: bool) -> bool:
        request = request_2014(word, content, raw=raw)
        if isinstance(request, Refused):
            self._output(render_local(request.reason, "warning"))
            return False
        if word == "names" and not raw and not self._names_noted:
            self._names_noted = True
            self._output(render_local(NAMES_NOTE))
        return conn.send_object(request)

    def _send_login(self) -> None:
        """Send the last login again (after a reconnect or a fall-back). Quiet when the
        connection has just ended: its ConnectionLost is on the way and decides."""
        conn = self._conn
        if conn is None or not conn.alive or self._login is None:
            return
        if self._send("login", self._login):
            self.editions.login_sent()
            for command in self._typed_ahead:
                self._send(command.word, command.content, raw=command.raw)

    # --- input -----------------------------------------------------------------------

    def handle_line(self, line: str) -> None:
        """Act on one typed line."""
        command = parse_command(line)
        if command is None:
            return
        with self._lock:
            if isinstance(command, Usage):
                self._output(render_local(command.message, "warning"))
            elif isinstance(command, Quit):
                self.quit()
            elif isinstance(command, Send):
                self._handle_send(command)

    def _handle_send(self, command: Send) -> None:
        if command.word == "login":
            self._login = command.content
            self._logout_sent = False
        elif command.word == "logout":
            self._logout_sent = True
            self.room = None
        if command.hint and self.editions.edition != EDITION_2014:
            self._output(render_local(command.hint))
        conn = self._conn
        if self.editions.waiting and command.word != "login" and conn is not None:
            # Kept to be sent again should the edition change, even if this send fails.
            self._typed_ahead.append(command)
            if not conn.alive:
                return  # it just ended: its ConnectionLost decides (a fall-back or not)
        sent = self._send(command.word, command.content, raw=command.raw)
        if sent and command.word == "login":
            self.editions.login_sent()

    def quit(self) -> None:
        """Log out if logged in, close the connection and finish with exit code 0."""
        with self._lock:
            conn = self._conn
            logged_in = self._login is not None and not self._logout_sent
            if conn is not None and conn.alive and logged_in:
                self._logout_sent = True
                self._send("logout", None)
            if self.exit_code is None:
                self.exit_code = 0
        self.stop()

    # --- events ----------------------------------------------------------------------

    def handle_item(self, item: object) -> None:
        """Act on one item taken from `inbox` (other item types are ignored)."""
        if not isinstance(item, Incoming):
            return
        with self._lock:
            if item.generation != self._generation or self.exit_code is not None:
                return
            self.last_received = time.monotonic()
            if isinstance(item.event, ConnectionLost):
                self._lost(item.event)
                return
            if self._repeated_refusal(item.event):
                return
            switch = self.editions.seen(item.event)
            if not self.editions.waiting:
                self._typed_ahead.clear()
            if switch is not None:
                self._output(render_local(switch.notice, "warning"))
                if not switch.show and isinstance(item.event, ChatLine):
                    self._refusal, self._refusals_due = gist(item.event), len(self._typed_ahead)
                if switch.resend_login:
                    self._send_login()
                if not switch.show:
                    return
            if self.editions.edition == EDITION_2014:
                for event in events_2014(item.event):
                    self._show(event)
            else:
                self._show(item.event)

    def _repeated_refusal(self, event: ServerEvent) -> bool:
        """The refusal that switched to 2014 again, answering a typed-ahead 2017 request."""
        if self._refusals_due <= 0 or not isinstance(event, ChatLine):
            return False
        if gist(event) != self._refusal:
            return False
        self._refusals_due -= 1
        return True

    def _show(self, event: ServerEvent) -> None:
        self.usernames.update(usernames_in(event))
        if is_stream_ack(event):
            return
        self._output(
            render_event(event, show_ids=self._show_ids, room=self.room, recent=self.recent)
        )
        self._remember(event)
        if (
            "stream" in features_of(event)
            and not self._stream_sent
            and self.editions.edition != EDITION_2014
        ):
            self._stream_sent = True
            self._send("stream", "on")

    def _remember(self, event: ServerEvent) -> None:
        """Track rooms and messages after `event` was shown."""
        listed = listed_rooms(event)
        if listed is not None:
            self.rooms = set(listed)
        else:
            self.rooms.update(room_names_in(event))
        left = left_room(event)
        if left is not None and self.room is not None and left.lower() == self.room.lower():
            self.room = None
        entered = entered_room(event)
        if entered is not None:
            self.room = entered
            self.rooms.add(entered)
        self.recent.forget(deleted_ids(event))
        self.recent.remember(event)

    def _lost(self, lost: ConnectionLost) -> None:
        self.room = None
        if self._conn is not None:
            self._conn.close(0.0)
            self._conn = None
        notice = self.editions.closed(lost.reason)
        if notice is not None:
            self._output(render_local(notice, "warning"))
            if self._reconnect_now():
                return
        elif self._logout_sent:
            self._output(render_local("disconnected (the server closed the connection)"))
            self.exit_code = 0
            return
        else:
            self._output(render_local(f"connection lost: {lost.reason}", "warning"))
        self._typed_ahead.clear()
        if self._reconnect and self._reconnect_loop():
            return
        self.exit_code = 1

    def _reconnect_now(self) -> bool:
        """One immediate reconnect, then the login again (the fall-back to 2014)."""
        try:
            self.connect()
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            self._output(
                render_local(f"cannot reconnect to {self.host}:{self.port}: {reason}", "warning")
            )
            return False
        self._send_login()
        return True

    def _reconnect_loop(self) -> bool:
        delay = RECONNECT_FIRST_DELAY
        for attempt in range(1, RECONNECT_ATTEMPTS + 1):
            self._output(
                render_local(
                    f"reconnecting to {self.host}:{self.port} in {delay:g} s "
                    f"(attempt {attempt}/{RECONNECT_ATTEMPTS})",
                    "warning",
                )
            )
            if self._stop.wait(delay):
                return False
            try:
                self.connect()
            except OSError as exc:
                self._output(render_local(f"reconnect failed: {exc.strerror or exc}", "warning"))
                delay = min(delay * 2, RECONNECT_MAX_DELAY)
                continue
            self._output(render_local(f"reconnected to {self.host}:{self.port}"))
            self._send_login()
            return True
        self._output(render_local("giving up reconnecting", "warning"))
        return False
