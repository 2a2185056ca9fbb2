# ruff: noqa: UP004, UP010, UP024, UP031
# Model clients, one per real student client measured in issue 13: twelve of the 2016/17
# KTN assignment (A-L) and three of the 2014 edition (2014a-c). Each is written in the
# style of the course skeleton (a MessageReceiver thread that reads the socket and a
# table of response handlers) from the measured behaviour alone, so that it survives or
# dies on each response shape exactly as its row of the table says.
#
# Rules:
# - Runs unchanged under Python 2.7 and 3 (no f-strings, no type hints). A row measured
#   on Python 3 models Python 3 (under 2.7 it may behave differently, e.g. C); a row
#   measured on 2.7 behaves the same under both.
# - A model never checks a shape to decide to die: it dies only because its own code
#   raises (a str + list, a json.loads of a dict, a cut-off recv(1024)...), in the thread
#   that reads the socket, as the real clients did. The harness below (not part of any
#   model) records that death, prints the traceback to stderr, and, when scripted, exits 1.
# - "Shows" = writes a line (UTF-8) to stdout per displayed message, entry or answer.
#
# Usage:
#   python student_clients.py --behaviour A|...|L|2014a|2014b|2014c
#                             [--script JSON] [--timeout 30] [--step-timeout 20] HOST PORT
# Without --script the model reads the lines a user types from stdin (as the real clients
# did) and keeps running after its receiver died, as they did. With --script it runs a JSON
# list of steps:
#   {"type": "login alice"}           the user types a line ("login NAME", "msg TEXT",
#                                     "names", "history", "logout"; 2017 clients send the
#                                     first word as the request and the rest as content)
#   {"see": "text"} / {"see": ["a", "b"]}
#       wait (bounded) for a shown line, after the one the last "see" matched, holding
#       every given text (case-insensitive)
# With --hold the model starts up, says "ready" on stderr, and connects only once a line
# arrives on stdin (so a test can start many without their start-up competing with the
# ones already receiving).
# Exit status (scripted): 0 every step done and the receiver alive; 1 the receiver died
# (an exception in its thread): what it was sent killed it; 5 it died on a read that
# held more than one object (two paced objects merged for a starved client: a pacing
# miss under load, not a shape); 2 a "see" timed out or the connection ended first;
# 3 could not connect / socket error; 4 bad arguments or script. To tell 5 from 1 the
# harness remembers the bytes of the last recv(); no model looks at that.
from __future__ import print_function

import argparse
import json
import socket
import sys
import threading
import time
import traceback

EXIT_OK = 0
EXIT_DIED = 1
EXIT_WAIT = 2
EXIT_SOCKET = 3
EXIT_USAGE = 4
EXIT_MERGED = 5

try:
    STRING_TYPES = (str, unicode)  # Python 2
    TEXT_TYPE = unicode
except NameError:
    STRING_TYPES = (str,)
    TEXT_TYPE = str


# -- the harness: the screen, the receiving thread, the scripted user (no model code) ------


def log(text):
    sys.stderr.write("student_clients: %s\n" % text)
    sys.stderr.flush()


class Screen(object):
    """What the user sees: every shown line, and what became of the receiving thread."""

    def __init__(self):
        self.condition = threading.Condition()
        self.lines = []
        self.cursor = 0
        self.died = None
        self.merged = False  # the read it died on was not exactly one object
        self.ended = None
        self.stopping = False

    def show(self, text):
        if not isinstance(text, TEXT_TYPE):
            text = text.decode("utf-8") if isinstance(text, bytes) else "%s" % (text,)
        out = getattr(sys.stdout, "buffer", sys.stdout)
        out.write((text + "\n").encode("utf-8"))
        out.flush()
        with self.condition:
            self.lines.append(text)
            self.condition.notify_all()

    def receiver_died(self, text, merged):
        with self.condition:
            self.died = text
            self.merged = merged
            self.condition.notify_all()

    def death_status(self):
        return EXIT_MERGED if self.merged else EXIT_DIED

    def receiver_ended(self, text):
        with self.condition:
            self.ended = text
            self.condition.notify_all()

    def wait_for(self, words, deadline):
        """Wait until a line after the last match holds every word; an exit status."""
        wanted = [word.lower() for word in words]
        with self.condition:
            while True:
                while self.cursor < len(self.lines):
                    line = self.lines[self.cursor].lower()
                    self.cursor += 1
                    if all(word in line for word in wanted):
                        return EXIT_OK
                if self.died is not None:
                    return self.death_status()
                if self.ended is not None:
                    log("%s before a line with %r" % (self.ended, words))
                    return EXIT_WAIT
                remaining = deadline - time.time()
                if remaining <= 0:
                    log("timed out waiting for a line with %r" % (words,))
                    return EXIT_WAIT
                self.condition.wait(min(remaining, 0.5))


class MessageReceiver(threading.Thread):
    """The course skeleton's receiving thread: it runs the model's own receive loop; an
    exception ends the thread (the model shows nothing more), as in the real clients."""

    def __init__(self, client, screen):
        threading.Thread.__init__(self)
        self.daemon = True
        self.client = client
        self.screen = screen

    def run(self):
        try:
            self.client.receive_forever()
        except Exception as exc:
            if self.screen.stopping:
                return  # the user quit: the socket was closed under the loop
            sys.stderr.write("Exception in thread %s:\n" % self.name)
            traceback.print_exc()
            sys.stderr.flush()
            last = self.client.connection.last_read
            merged = (
                self.client.one_read_per_object and last is not None and held_more_than_one(last)
            )
            if merged:
                log(
                    "it died on a read of %d bytes holding more than one JSON object: "
                    "a pacing miss (a starved reader), not a shape" % len(last)
                )
            self.screen.receiver_died("%s: %s" % (type(exc).__name__, exc), merged)
            return
        self.screen.receiver_ended("the receive loop returned")


def held_more_than_one(data):
    """True if `data` (one recv) starts with a whole JSON value and holds more after it:
    two objects merged into one read. A read holding part of one object only is not (an
    object bigger than the buffer is a shape the model dies on)."""
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        return False
    try:
        _, end = json.JSONDecoder().raw_decode(text)
    except ValueError:
        return False
    return bool(text[end:].strip())


class WatchedSocket(object):
    """The model's socket, remembering what the last recv() returned (for the harness)."""

    def __init__(self, sock):
        self.sock = sock
        self.last_read = None

    def recv(self, size):
        data = self.sock.recv(size)
        self.last_read = data
        return data

    def __getattr__(self, name):
        return getattr(self.sock, name)


class StudentClient(object):
    """What every model shares: the connection, showing a line, sending one request."""

    python = "3"  # the Python the measured client ran on
    # True for the models that json.loads each recv() whole (for the harness to tell a
    # pacing miss from a shape); False for those that buffer and split.
    one_read_per_object = True

    def __init__(self, host, port, screen):
        self.screen = screen
        self.connection = WatchedSocket(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        self.connection.connect((host, port))

    def show(self, text):
        self.screen.show(text)

    def send_payload(self, payload):
        # One request per send(), no delimiter: what all 16 measured clients did.
        self.connection.send(json.dumps(payload).encode("utf-8"))

    def handle_input(self, line):
        """A typed line: the first word is the request, the rest the content."""
        words = line.split(" ", 1)
        content = words[1] if len(words) > 1 else None
        self.send_payload({"request": words[0], "content": content})

    def receive_forever(self):
        raise NotImplementedError


class Client2014(StudentClient):
    """A 2014-edition client: its own request shapes (seed 000)."""

    names_request = "users"

    def handle_input(self, line):
        words = line.split(" ", 1)
        command, rest = words[0], (words[1] if len(words) > 1 else "")
        if command == "login":
            self.send_payload({"request": "login", "username": rest})
        elif command == "msg":
            self.send_payload({"request": "message", "message": rest})
        elif command == "names":
            self.send_payload({"request": self.names_request})
        elif command == "logout":
            self.send_payload({"request": "logout"})
        else:
            self.show("Unknown command: " + command)


# -- the 2016/17 models ----------------------------------------------------------------------


class ClientA(StudentClient):
    """py2.7, recv(1024). History: only a list of [timestamp, sender, text] arrays.
    Messages concatenate the timestamp (a number kills it); info uses %s."""

    python = "2.7"

    def receive_forever(self):
        while True:
            received_string = self.connection.recv(1024)
            self.receive_message(received_string)

    def receive_message(self, message):
        payload = json.loads(message)
        if payload["response"] == "info":
            self.show("%s" % (payload["content"],))
        elif payload["response"] == "error":
            self.show("Error: %s" % (payload["content"],))
        elif payload["response"] == "message":
            self.show(payload["timestamp"] + " " + payload["sender"] + ": " + payload["content"])
        elif payload["response"] == "history":
            for timestamp, sender, text in payload["content"]:
                self.show(timestamp + " " + sender + ": " + text)


class ClientB(StudentClient):
    """py3, recv(1024). History: a list of message objects, each shown as a message."""

    def __init__(self, host, port, screen):
        StudentClient.__init__(self, host, port, screen)
        self.possible_responses = {
            "error": self.parse_error,
            "info": self.parse_info,
            "message": self.parse_message,
            "history": self.parse_history,
        }

    def receive_forever(self):
        while True:
            data = self.connection.recv(1024).decode()
            payload = json.loads(data)
            self.possible_responses[payload["response"]](payload)

    def parse_error(self, payload):
        self.show("[error] {}".format(payload["content"]))

    def parse_info(self, payload):
        self.show("[info] {}".format(payload["content"]))

    def parse_message(self, payload):
        self.show("[{}] {}: {}".format(payload["timestamp"], payload["sender"], payload["content"]))

    def parse_history(self, payload):
        for message in payload["content"]:
            self.parse_message(message)


class ClientC(StudentClient):
    """py3, recv(1024). parse() takes the bytes of one recv; the history handler feeds
    each entry back into parse(), so only an empty history survives."""

    def __init__(self, host, port, screen):
        StudentClient.__init__(self, host, port, screen)
        self.handlers = {
            "error": self.error,
            "info": self.info,
            "message": self.message,
            "history": self.history,
        }

    def receive_forever(self):
        while True:
            self.parse(self.connection.recv(1024))

    def parse(self, data):
        payload = json.loads(data.decode())
        handler = self.handlers.get(payload["response"])
        if handler is not None:
            handler(payload)

    def error(self, payload):
        self.show("Error: " + str(payload["content"]))

    def info(self, payload):
        self.show("Server: " + str(payload["content"]))

    def message(self, payload):
        self.show(payload["sender"] + " (" + str(payload["timestamp"]) + "): " + payload["content"])

    def history(self, payload):
        for message in payload["content"]:
            self.parse(message)  # "each element is a JSON object too"


class ClientD(StudentClient):
    """py3, one recv(16384) per object (a bigger buffer: objects over 1 KiB arrive whole).
    History: json.loads of each entry. Info concatenates its content (a list kills it)."""

    def __init__(self, host, port, screen):
        StudentClient.__init__(self, host, port, screen)
        self.handlers = {
            "error": self.on_error,
            "info": self.on_info,
            "message": self.on_message,
            "history": self.on_history,
        }

    def receive_forever(self):
        while True:
            data = self.connection.recv(16384)
            if not data:
                self.show("Lost the connection to the server")
                return
            payload = json.loads(data.decode())
            self.handlers[payload["response"]](payload)

    def on_error(self, payload):
        self.show("Error: " + payload["content"])

    def on_info(self, payload):
        self.show("Server: " + payload["content"])

    def on_message(self, payload):
        self.show(str(payload["timestamp"]) + " " + payload["sender"] + ": " + payload["content"])

    def on_history(self, payload):
        for item in payload["content"]:
            message = json.loads(item)
            self.on_message(message)


class ClientE(StudentClient):
    """py2.7, recv(65536). parse() takes a JSON string; the history handler parses each
    entry with it, as the assignment's hint says. Formats with %s throughout."""

    python = "2.7"

    def receive_forever(self):
        while True:
            data = self.connection.recv(65536)
            if not data:
                return
            self.parse(data)

    def parse(self, raw):
        payload = json.loads(raw)
        getattr(self, "on_" + payload["response"])(payload)

    def on_error(self, payload):
        self.show("! %s" % (payload["content"],))

    def on_info(self, payload):
        self.show("* %s" % (payload["content"],))

    def on_message(self, payload):
        self.show("%s %s: %s" % (payload["timestamp"], payload["sender"], payload["content"]))

    def on_history(self, payload):
        for raw in payload["content"]:
            self.parse(raw)


class ClientF(StudentClient):
    """py3, recv(1024). Shows every response as timestamp + sender + kind + content,
    concatenated: any content or timestamp that is not a str kills it."""

    def receive_forever(self):
        while True:
            response = json.loads(self.connection.recv(1024))
            self.print_response(response)

    def print_response(self, response):
        self.show(
            response["timestamp"]
            + " "
            + response["sender"]
            + " ["
            + response["response"]
            + "]: "
            + response["content"]
        )


class ClientG(StudentClient):
    """py3, recv(1024). History in any encoding: decodes text, then each string entry."""

    def __init__(self, host, port, screen):
        StudentClient.__init__(self, host, port, screen)
        self.handlers = {
            "error": self.on_error,
            "info": self.on_info,
            "message": self.on_message,
            "history": self.on_history,
        }

    def receive_forever(self):
        while True:
            data = self.connection.recv(1024)
            payload = json.loads(data.decode("utf-8"))
            self.handlers[payload["response"]](payload)

    def on_error(self, payload):
        self.show("ERROR {}".format(payload["content"]))

    def on_info(self, payload):
        self.show("INFO {}".format(payload["content"]))

    def on_message(self, payload):
        self.show("{} {}: {}".format(payload["timestamp"], payload["sender"], payload["content"]))

    def on_history(self, payload):
        content = payload["content"]
        if isinstance(content, str):
            content = json.loads(content)
        for entry in content:
            if isinstance(entry, str):
                entry = json.loads(entry)
            self.on_message(entry)


class ClientH(StudentClient):
    """py2.7. Reads lines (socket.makefile). History: a list comprehension of json.loads
    over the entries. Formats with %s."""

    one_read_per_object = False

    python = "2.7"

    def receive_forever(self):
        reader = self.connection.makefile("rb")
        while True:
            line = reader.readline()
            if not line:
                return
            if line.strip():
                self.handle(json.loads(line))

    def handle(self, payload):
        kind = payload["response"]
        if kind == "history":
            messages = [json.loads(m) for m in payload["content"]]
            for message in messages:
                self.show_message(message)
        elif kind == "message":
            self.show_message(payload)
        else:
            self.show("[%s] %s" % (kind, payload["content"]))

    def show_message(self, message):
        self.show("%s <%s> %s" % (message["timestamp"], message["sender"], message["content"]))


class ClientI(StudentClient):
    """py2.7, recv(1024). History in any encoding. Every line is concatenated: timestamp,
    sender and content must all be str."""

    python = "2.7"

    def receive_forever(self):
        while True:
            msg = self.connection.recv(1024)
            obj = json.loads(msg)
            if obj["response"] == "history":
                self.print_history(obj["content"])
            else:
                self.print_line(obj)

    def print_line(self, obj):
        self.show(obj["timestamp"] + " | " + obj["sender"] + " | " + obj["content"])

    def print_history(self, content):
        if isinstance(content, STRING_TYPES):
            content = json.loads(content)  # some servers send the list as text
        for entry in content:
            if isinstance(entry, dict):
                self.print_line(entry)
            else:
                self.print_line(json.loads(entry))


class ClientJ(StudentClient):
    """py3, recv(1024). History: json.loads of the content ("several JSON decodings are
    required"), so only JSON text of a list survives."""

    def receive_forever(self):
        while True:
            data = self.connection.recv(1024)
            self.handle(json.loads(data.decode()))

    def handle(self, payload):
        kind = payload["response"]
        if kind == "history":
            self.on_history(payload)
        elif kind == "message":
            self.on_message(payload)
        else:
            self.show("%s: %s" % (kind.upper(), payload["content"]))

    def on_message(self, payload):
        self.show("%s - %s: %s" % (payload["timestamp"], payload["sender"], payload["content"]))

    def on_history(self, payload):
        messages = json.loads(payload["content"])
        for message in messages:
            self.on_message(message)


class ClientK(StudentClient):
    """py2.7. Parses a stream (recv(4096) + raw_decode), so any size and any history
    encoding; info concatenates its content (a list kills it)."""

    one_read_per_object = False

    python = "2.7"

    def receive_forever(self):
        decoder = json.JSONDecoder()
        buffer = ""
        while True:
            data = self.connection.recv(4096)
            if not data:
                return
            buffer += data.decode("utf-8")
            while True:
                buffer = buffer.lstrip()
                if not buffer:
                    break
                try:
                    obj, end = decoder.raw_decode(buffer)
                except ValueError:
                    break  # the rest has not arrived yet
                buffer = buffer[end:]
                self.dispatch(obj)

    def dispatch(self, obj):
        kind = obj.get("response")
        if kind == "history":
            self.on_history(obj)
        elif kind == "message":
            self.on_message(obj)
        elif kind == "error":
            self.show("Error: " + obj["content"])
        elif kind == "info":
            self.show("Server: " + obj["content"])

    def on_message(self, obj):
        self.show("%s %s: %s" % (obj["timestamp"], obj["sender"], obj["content"]))

    def on_history(self, obj):
        content = obj["content"]
        if isinstance(content, STRING_TYPES):
            content = json.loads(content)
        for entry in content:
            if isinstance(entry, STRING_TYPES):
                entry = json.loads(entry)
            self.on_message(entry)


class ClientL(StudentClient):
    """py2.7, recv(1024). History: each entry json.loads-ed and processed again. Every
    line concatenated."""

    python = "2.7"

    def receive_forever(self):
        while True:
            self.process(json.loads(self.connection.recv(1024)))

    def process(self, response):
        kind = response["response"]
        if kind == "history":
            for item in response["content"]:
                self.process(json.loads(item))
        elif kind == "message":
            self.show(response["timestamp"] + " " + response["sender"] + ": " + response["content"])
        else:
            self.show(response["timestamp"] + " " + kind.upper() + ": " + response["content"])


# -- the 2014-edition models -----------------------------------------------------------------


class Client2014a(Client2014):
    """Reads recv(4096) until a newline ends the data, then handles each line. The
    backlog: json.loads of each entry, its "message" shown (a plain-string entry kills
    it). Asks with `users`."""

    one_read_per_object = False

    def __init__(self, host, port, screen):
        Client2014.__init__(self, host, port, screen)
        self.handlers = {
            "login": self.on_login,
            "message": self.on_message,
            "logout": self.on_logout,
            "users": self.on_users,
        }

    def receive_forever(self):
        data = b""
        while True:
            chunk = self.connection.recv(4096)
            if not chunk:
                return
            data += chunk
            if not data.endswith(b"\n"):
                continue  # the rest is on its way
            lines, data = data.splitlines(), b""
            for line in lines:
                if line.strip():
                    response = json.loads(line.decode("utf-8"))
                    self.handlers[response["response"]](response)

    def on_login(self, response):
        if "error" in response:
            self.show("Login failed: " + response["error"])
            return
        self.show("Welcome " + response["username"])
        for entry in response["messages"]:
            self.show(json.loads(entry)["message"])

    def on_message(self, response):
        if "error" in response:
            self.show("Error: " + response["error"])
        else:
            self.show(response["message"])

    def on_logout(self, response):
        self.show("Logged out %s" % (response["username"],))

    def on_users(self, response):
        self.show("Online: " + ", ".join(response["users"]))


class Client2014b(Client2014):
    """One recv(65536) per object. Ignores the backlog. Asks with `users`."""

    def receive_forever(self):
        while True:
            data = self.connection.recv(65536)
            if not data:
                return
            response = json.loads(data)
            kind = response["response"]
            if "error" in response:
                self.show("Error: %s" % (response["error"],))
            elif kind == "login":
                self.show("Logged in as %s" % (response["username"],))
            elif kind == "message":
                self.show(response["message"])
            elif kind == "users":
                self.show("Users online: %s" % ", ".join(response["users"]))
            elif kind == "logout":
                self.show("You are logged out")


class Client2014c(Client2014):
    """Reads lines. Prints each backlog entry as it is. Asks with `listUsers` and has a
    handler for exactly that response word; anything else it has no handler for it skips
    without a word."""

    one_read_per_object = False

    names_request = "listUsers"

    def __init__(self, host, port, screen):
        Client2014.__init__(self, host, port, screen)
        self.handlers = {
            "login": self.login,
            "message": self.message,
            "logout": self.logout,
            "listUsers": self.list_users,
        }

    def receive_forever(self):
        reader = self.connection.makefile("rb")
        while True:
            line = reader.readline()
            if not line:
                return
            if not line.strip():
                continue
            response = json.loads(line)
            if response["response"] in self.handlers:
                self.handlers[response["response"]](response)

    def login(self, response):
        self.show("Logged in: %s" % (response["username"],))
        for entry in response.get("messages", []):
            self.show(entry)

    def message(self, response):
        self.show(response.get("message") or response.get("error"))

    def logout(self, response):
        self.show("Logged out.")

    def list_users(self, response):
        self.show("Users: " + ", ".join(response["users"]))


BEHAVIOURS = {
    "A": ClientA,
    "B": ClientB,
    "C": ClientC,
    "D": ClientD,
    "E": ClientE,
    "F": ClientF,
    "G": ClientG,
    "H": ClientH,
    "I": ClientI,
    "J": ClientJ,
    "K": ClientK,
    "L": ClientL,
    "2014a": Client2014a,
    "2014b": Client2014b,
    "2014c": Client2014c,
}


# -- running a model -------------------------------------------------------------------------


def run_script(client, screen, steps, timeout, step_timeout):
    deadline = time.time() + timeout
    for step in steps:
        with screen.condition:
            if screen.died is not None:
                return screen.death_status()
        if "type" in step:
            client.handle_input(step["type"])
        elif "see" in step:
            words = step["see"]
            if isinstance(words, STRING_TYPES):
                words = [words]
            limit = min(deadline, time.time() + step.get("timeout", step_timeout))
            status = screen.wait_for(words, limit)
            if status != EXIT_OK:
                return status
        else:
            raise ValueError("bad step %r" % (step,))
    with screen.condition:
        return screen.death_status() if screen.died is not None else EXIT_OK


def run_interactive(client):
    """The real clients' main loop: read typed lines until EOF or quit."""
    while True:
        line = sys.stdin.readline()
        if not line:
            return EXIT_OK
        line = line.strip()
        if line in ("quit", "exit"):
            return EXIT_OK
        if line:
            client.handle_input(line)


def close(client, screen, receiver):
    screen.stopping = True
    try:
        client.connection.shutdown(socket.SHUT_RDWR)
    except socket.error:
        pass
    receiver.join(5.0)
    client.connection.close()


def parse_args(argv):
    parser = argparse.ArgumentParser(description="model clients of measured student clients")
    parser.add_argument("--behaviour", required=True, choices=sorted(BEHAVIOURS))
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--script", help="JSON list of steps (default: read typed lines)")
    parser.add_argument("--timeout", type=float, default=30.0, help="overall seconds")
    parser.add_argument("--step-timeout", type=float, default=20.0)
    parser.add_argument("--hold", action="store_true", help="connect once stdin has a line")
    parser.add_argument("address", nargs="*", help="HOST PORT (or PORT)")
    args = parser.parse_args(argv)
    if len(args.address) > 2:
        parser.error("at most HOST PORT")
    if len(args.address) == 2:
        args.host, args.port = args.address[0], args.address[1]
    elif len(args.address) == 1:
        args.port = args.address[0]
    if args.host is None:
        args.host = "127.0.0.1"
    try:
        args.port = int(args.port)
    except (TypeError, ValueError):
        parser.error("a port is needed")
    return args


def main(argv=None):
    args = parse_args(argv)
    steps = None
    if args.script is not None:
        try:
            steps = json.loads(args.script)
            if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
                raise ValueError("the script must be a JSON list of objects")
        except ValueError as exc:
            log("bad script: %s" % exc)
            return EXIT_USAGE
    if args.hold:
        log("ready")
        sys.stdin.readline()
    screen = Screen()
    try:
        client = BEHAVIOURS[args.behaviour](args.host, args.port, screen)
    except socket.error as exc:
        log("cannot connect to %s:%d: %s" % (args.host, args.port, exc))
        return EXIT_SOCKET
    receiver = MessageReceiver(client, screen)
    receiver.start()
    try:
        if steps is None:
            return run_interactive(client)
        return run_script(client, screen, steps, args.timeout, args.step_timeout)
    except ValueError as exc:
        log("bad script: %s" % exc)
        return EXIT_USAGE
    except socket.error as exc:
        log("socket error while sending: %s" % exc)
        return EXIT_SOCKET
    finally:
        close(client, screen, receiver)


if __name__ == "__main__":
    sys.exit(main())
