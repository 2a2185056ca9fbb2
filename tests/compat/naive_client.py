# ruff: noqa: UP010, UP024, UP031
# A deliberately naive KTN chat client, written the way the 2017 students wrote theirs
# (the course skeleton's MessageReceiver(Thread) doing `json.loads(sock.recv(1024))`).
#
# It runs unchanged under Python 2.7 and Python 3 (no f-strings, no type hints).
#
# What it proves: the receiver thread does ONE recv(1024) per object and json.loads()
# the bytes with NO buffering, so if the server ever puts two objects in one read, or
# splits one object across reads, json.loads fails; the failure is recorded and the
# client exits non-zero. Earlier messages come (ktnchat's default for a client that has
# not said `stream on`) as ordinary `message` objects marked "history": true; when they
# come as `history` objects instead (--history-delivery history), each entry is decoded a
# second time, as the assignment's hints tell students to.
#
# Usage:
#   python naive_client.py --port 9998 [--quirk null|empty|None|stale|missing]
#                          [--reply-waiting] [--timeout 20] [--script JSON] [--hold]
# The script (from --script, or stdin when omitted) is a JSON list of steps:
#   {"request": "login", "content": "alice"}   send one request (one send(), no delimiter)
#   {"request": "logout"}                      no "content": apply the quirk (see below)
#   {"request": "names", "quirk": "missing"}   per-step quirk
#   {"wait": {"response": "message", "sender": "bob"}}
#       wait (bounded) for the next not-yet-consumed object whose keys equal these values
# Quirks for argument-less requests, as measured on real student clients:
#   null -> "content": null     empty -> "content": ""     None -> "content": "None"
#   stale -> the previous request's content text           missing -> no "content" key
# With --reply-waiting the client waits for at least one new object after every request
# before sending the next (as one student client does). With --hold it says "ready" on
# stderr and connects only once a line arrives on stdin (then the script comes from
# --script), so a test can start several before any of them receives.
#
# Output: every received object, re-encoded as one JSON line on stdout.
# Exit status: 0 everything received parsed and every step completed; 1 something
# received did not parse as exactly one object (or a history entry did not decode);
# 2 a wait timed out or the connection ended first; 3 could not connect / socket error;
# 4 bad arguments or script.
from __future__ import print_function

import argparse
import json
import socket
import sys
import threading
import time

EXIT_OK = 0
EXIT_PARSE = 1
EXIT_WAIT = 2
EXIT_SOCKET = 3
EXIT_USAGE = 4

QUIRKS = ("null", "empty", "None", "stale", "missing")

try:
    STRING_TYPES = (str, unicode)  # Python 2
except NameError:
    STRING_TYPES = (str,)


def log(text):
    sys.stderr.write("naive_client: %s\n" % text)
    sys.stderr.flush()


class MessageReceiver(threading.Thread):
    """Receives and parses messages from the server (the course skeleton's design)."""

    def __init__(self, client, connection, recv_bytes, deadline):
        threading.Thread.__init__(self)
        self.daemon = True
        self.client = client
        self.connection = connection
        self.recv_bytes = recv_bytes
        self.deadline = deadline

    def run(self):
        while not self.client.stopping and time.time() < self.deadline:
            try:
                received_string = self.connection.recv(self.recv_bytes)
            except socket.timeout:
                continue
            except socket.error as exc:
                if not self.client.stopping:
                    self.client.on_eof("socket error: %s" % exc)
                return
            if not received_string:
                self.client.on_eof("connection closed by the server")
                return
            try:
                payload = json.loads(received_string.decode("utf-8"))
                check_payload(payload)
            except (ValueError, TypeError, KeyError) as exc:
                # A real student client dies here; we record why and stop reading.
                self.client.on_failure(
                    "could not parse one recv(%d) as one object: %s; data=%r"
                    % (self.recv_bytes, exc, received_string)
                )
                return
            self.client.on_payload(payload)


def check_payload(payload):
    """Raise ValueError/TypeError/KeyError where a naive client would have crashed."""
    if not isinstance(payload, dict):
        raise TypeError("not a JSON object: %r" % (payload,))
    response = payload["response"]
    if response == "message":
        _ = (payload["timestamp"], payload["sender"], payload["content"])  # it prints these
    elif response == "history":
        for entry in payload["content"]:
            if not isinstance(entry, STRING_TYPES):
                raise TypeError("history entry is not a JSON string: %r" % (entry,))
            message = json.loads(entry)  # "several JSON decodings are required"
            if not isinstance(message, dict):
                raise TypeError("history entry is not an object: %r" % (message,))
            _ = (message["sender"], message["content"])  # a naive client prints these


class Client(object):  # noqa: UP004
    def __init__(self, host, port, quirk, reply_waiting, timeout, recv_bytes):
        self.quirk = quirk
        self.reply_waiting = reply_waiting
        self.deadline = time.time() + timeout
        self.recv_bytes = recv_bytes
        self.condition = threading.Condition()
        self.received = []
        self.cursor = 0
        self.failure = None
        self.eof = None
        self.stopping = False
        self.last_content = None
        self.connection = socket.create_connection((host, port), timeout)
        # The receiver polls so it can notice the deadline; a timeout is not an error.
        self.connection.settimeout(0.25)
        self.receiver = MessageReceiver(self, self.connection, recv_bytes, self.deadline)
        self.receiver.start()

    # -- called by the receiver thread -------------------------------------------------

    def on_payload(self, payload):
        print(json.dumps(payload, sort_keys=True))
        sys.stdout.flush()
        with self.condition:
            self.received.append(payload)
            self.condition.notify_all()

    def on_failure(self, text):
        log(text)
        with self.condition:
            self.failure = text
            self.condition.notify_all()

    def on_eof(self, text):
        with self.condition:
            self.eof = text
            self.condition.notify_all()

    # -- the main thread ---------------------------------------------------------------

    def send(self, step):
        request = step["request"]
        payload = {"request": request}
        if "content" in step:
            content = step["content"]
        else:
            quirk = step.get("quirk", self.quirk)
            if quirk == "missing":
                content = None
            elif quirk == "null":
                content = None
                payload["content"] = None
            elif quirk == "empty":
                content = payload["content"] = ""
            elif quirk == "None":
                content = payload["content"] = "None"
            elif quirk == "stale":
                content = payload["content"] = self.last_content
            else:
                raise ValueError("unknown quirk %r" % (quirk,))
        if "content" in step:
            payload["content"] = content
        if content is not None:
            self.last_content = content
        with self.condition:
            before = len(self.received)
        self.connection.sendall(json.dumps(payload).encode("utf-8"))
        if self.reply_waiting:
            return self.wait_for(lambda: len(self.received) > before, "a reply to %r" % payload)
        return EXIT_OK

    def wait(self, fields, timeout):
        def matched():
            while self.cursor < len(self.received):
                obj = self.received[self.cursor]
                self.cursor += 1
                if all(obj.get(key) == value for key, value in fields.items()):
                    return True
            return False

        return self.wait_for(matched, "an object matching %r" % (fields,), timeout)

    def wait_for(self, predicate, what, timeout=None):
        """Wait (bounded) until predicate() holds; an exit status."""
        limit = self.deadline
        if timeout is not None:
            limit = min(limit, time.time() + timeout)
        with self.condition:
            while True:
                if self.failure is not None:
                    return EXIT_PARSE
                if predicate():
                    return EXIT_OK
                if self.eof is not None:
                    log("%s before %s" % (self.eof, what))
                    return EXIT_WAIT
                remaining = limit - time.time()
                if remaining <= 0:
                    log("timed out waiting for %s" % what)
                    return EXIT_WAIT
                self.condition.wait(min(remaining, 0.5))

    def run(self, steps, step_timeout):
        for step in steps:
            if "request" in step:
                status = self.send(step)
            elif "wait" in step:
                status = self.wait(step["wait"], step.get("timeout", step_timeout))
            else:
                raise ValueError("bad step %r" % (step,))
            if status != EXIT_OK:
                return status
        with self.condition:
            return EXIT_PARSE if self.failure is not None else EXIT_OK

    def close(self):
        self.stopping = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except socket.error:
            pass
        self.receiver.join(5.0)
        self.connection.close()


def parse_args(argv):
    parser = argparse.ArgumentParser(description="a deliberately naive KTN chat client")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--quirk", choices=QUIRKS, default="null")
    parser.add_argument("--reply-waiting", action="store_true")
    parser.add_argument("--timeout", type=float, default=20.0, help="overall seconds")
    parser.add_argument("--step-timeout", type=float, default=10.0)
    parser.add_argument("--recv-bytes", type=int, default=1024)
    parser.add_argument("--script", help="JSON list of steps (default: read stdin)")
    parser.add_argument("--hold", action="store_true", help="connect once stdin has a line")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        text = args.script if args.script is not None else sys.stdin.read()
        steps = json.loads(text)
        if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
            raise ValueError("the script must be a JSON list of objects")
    except ValueError as exc:
        log("bad script: %s" % exc)
        return EXIT_USAGE
    if args.hold:
        log("ready")
        sys.stdin.readline()
    try:
        client = Client(
            args.host, args.port, args.quirk, args.reply_waiting, args.timeout, args.recv_bytes
        )
    except socket.error as exc:
        log("cannot connect to %s:%d: %s" % (args.host, args.port, exc))
        return EXIT_SOCKET
    try:
        return client.run(steps, args.step_timeout)
    except ValueError as exc:
        log("bad script: %s" % exc)
        return EXIT_USAGE
    except socket.error as exc:
        log("socket error while sending: %s" % exc)
        return EXIT_SOCKET
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
