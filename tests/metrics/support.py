# Scraping a real /metrics endpoint over a raw socket (so the test knows every byte the
# server wrote for it) and reading it with prometheus_client's own parser.
from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from typing import Dict, Tuple

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import WAIT

Key = Tuple[str, Tuple[Tuple[str, str], ...]]


@dataclass
class Scrape:
    status: int
    content_type: str
    wire_bytes: int  # everything the server wrote on this connection: headers and body
    body: str
    samples: Dict[Key, float] = field(default_factory=dict)

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called `name` whose labels include `labels` (0 if none)."""
        total = 0.0
        for (sample, have), value in self.samples.items():
            if sample == name and all((k, v) in have for k, v in labels.items()):
                total += value
        return total

    def names(self) -> set:
        return {sample for sample, _ in self.samples}

    def families(self) -> set:
        """Every metric the page declares (`# TYPE` lines), with samples or not yet."""
        return {line.split()[2] for line in self.body.splitlines() if line.startswith("# TYPE ")}

    def label_values(self, name: str, label: str) -> set:
        return {dict(have).get(label) for sample, have in self.samples if sample == name}


def scrape(address: Tuple[str, int], path: str = "/metrics") -> Scrape:
    """GET `path` with `Connection: close`, read to EOF, parse the Prometheus text."""
    host, port = address[0], address[1]
    received = b""
    with socket.create_connection((host, port), timeout=WAIT) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        else:
            raise AssertionError("the metrics response did not end in time")
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        name.lower(): value
        for name, value in (line.split(": ", 1) for line in lines[1:] if ": " in line)
    }
    result = Scrape(
        status,
        headers.get("content-type", ""),
        len(received),
        body.decode("utf-8", "replace"),
    )
    if status == 200 and result.content_type.startswith("text/plain; version=0.0.4"):
        for family in text_string_to_metric_families(result.body):
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                result.samples[key] = float(sample.value)
    return result
