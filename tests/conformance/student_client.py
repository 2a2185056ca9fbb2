# A student-style KTN client (the course skeleton's shape: a receiver thread, commands typed
# on stdin), with switches that each add ONE defect, for testing the client checker.
#
# Usage: python student_client.py HOST PORT [--defect NAME] [--naive]
#   --naive: the receiver does json.loads(sock.recv(1024)) per read, as most students did
#   (dies on two objects in one read, on split objects, on objects over 1024 bytes) and
#   decodes history entries with a second json.loads (fine for json-strings only).
# Rules: standard library only; exits when stdin ends or the receiver dies.
from __future__ import annotations

import json
import socket
import sys
import threading
import time
from typing import Any, List

DEFECTS = (
    "msg-word",  # sends {"request": "message", ...} for msg
    "names-empty",  # names sends "content": "" instead of null
    "logout-no-content",  # logout sends no "content" key
    "hide-errors",  # error responses are not shown
    "dies-on-concat",  # buffers split objects but dies on two in one read
    # History and names shapes (each kills the receiver thread on one shape or more):
    "objects-only",  # history entries used as objects, never decoded from JSON strings
    "last-entry",  # shows the history's last entry with content[-1] (dies on [])
    "parse-time",  # parses every timestamp with time.strptime (dies on numbers)
    "info-concat",  # shows "info: " + content (dies on a list)
    "four-keys",  # unpacks exactly four values from each response (dies on extra keys)
    "ignore-history",  # history responses are silently dropped (survives, shows nothing)
)


def show(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class Client:
    def __init__(self, host: str, port: int, defect: str, naive: bool) -> None:
        self.defect = defect
        self.naive = naive
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.settimeout(None)
        threading.Thread(target=self.receive, daemon=True).start()

    def send(self, payload: Any) -> None:
        self.sock.sendall(json.dumps(payload).encode())

    def handle_line(self, line: str) -> None:
        word, _, rest = line.strip().partition(" ")
        if word == "login":
            self.send({"request": "login", "content": rest})
        elif word == "msg":
            self.send(
                {"request": "message" if self.defect == "msg-word" else "msg", "content": rest}
            )
        elif word == "names":
            self.send({"request": "names", "content": "" if self.defect == "names-empty" else None})
        elif word == "logout" and self.defect == "logout-no-content":
            self.send({"request": "logout"})
        elif word in ("help", "logout"):
            self.send({"request": word, "content": None})

    def receive(self) -> None:
        buffer = ""
        decoder = json.JSONDecoder()
        while True:
            data = self.sock.recv(1024)
            if not data:
                show("connection closed")
                return
            if self.naive:
                self.present(json.loads(data.decode()))
                continue
            buffer += data.decode()
            while buffer.strip():
                buffer = buffer.lstrip()
                if self.defect == "dies-on-concat":
                    try:
                        self.present(json.loads(buffer))
                    except json.JSONDecodeError as exc:
                        if "Extra data" in str(exc):
                            raise
                        break
                    buffer = ""
                    continue
                try:
                    value, end = decoder.raw_decode(buffer)
                except ValueError:
                    break
                buffer = buffer[end:]
                self.present(value)

    def present(self, payload: Any) -> None:
        kind, content = payload["response"], payload["content"]
        sender = payload.get("sender", "")
        if self.defect == "four-keys":
            _, sender, kind, content = payload.values()
        if self.defect == "parse-time":
            time.strptime(payload["timestamp"], "%Y-%m-%d %H:%M:%S")
        if kind == "message":
            show(f"{sender}: {content}")
        elif kind == "info":
            show("info: " + content if self.defect == "info-concat" else f"info: {content}")
        elif kind == "error" and self.defect != "hide-errors":
            show(f"error: {content}")
        elif kind == "history" and self.defect != "ignore-history":
            entries = self.entries(content)
            for entry in entries:
                show(f"[history] {entry['sender']}: {entry['content']}")
            if self.defect == "last-entry":
                show(f"{len(entries)} earlier messages, the last: {entries[-1]['content']}")

    def entries(self, content: Any) -> List[Any]:
        if self.naive:
            return [json.loads(e) for e in content]
        if isinstance(content, str):
            content = json.loads(content)
        if self.defect == "objects-only":
            return list(content)
        return [json.loads(e) if isinstance(e, str) else e for e in content]


def main(argv: List[str]) -> int:
    defect = argv[argv.index("--defect") + 1] if "--defect" in argv else ""
    client = Client(argv[0], int(argv[1]), defect, "--naive" in argv)
    for line in sys.stdin:
        client.handle_line(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
