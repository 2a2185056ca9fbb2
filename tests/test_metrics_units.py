# The metrics registry, its Prometheus exposition (read back with prometheus_client's own
# parser), the JSON log format, and `ktnchat top` against a real HTTP server on port 0.
from __future__ import annotations

import http.server
import io
import json
import logging
import threading
from contextlib import redirect_stdout
from typing import Dict, Iterator, Tuple

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ktnchat.logs import JsonFormatter, log_fields
from ktnchat.metrics import MetricsCollector, Registry, exposition
from ktnchat.top import main as top_main
from ktnchat.top import metrics_url


def parsed(text: bytes) -> Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_counts_from_many_threads_add_up_on_scrape() -> None:
    registry = Registry()

    def work(n: int) -> None:
        mine = registry.counters()
        for _ in range(n):
            mine.deliveries += 1
        mine.count_request("msg", "ok")
        mine.count_moderation("kick")
        mine.count_moderation("something-new")  # unknown kinds fold into "other"
        mine.observe_storage("append_message", 0.002)
        mine.loop_pass.observe(0.0003)

    threads = [threading.Thread(target=work, args=(1000 * (i + 1),)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    values = parsed(exposition(MetricsCollector(registry, worker="w1")))
    assert values[("ktnchat_deliveries_total", (("worker", "w1"),))] == 10_000
    key = ("ktnchat_requests_total", (("outcome", "ok"), ("request", "msg"), ("worker", "w1")))
    assert values[key] == 4
    assert values[("ktnchat_moderation_actions_total", (("kind", "kick"), ("worker", "w1")))] == 4
    assert values[("ktnchat_moderation_actions_total", (("kind", "other"), ("worker", "w1")))] == 4
    storage = (("le", "0.0025"), ("operation", "append_message"), ("worker", "w1"))
    assert values[("ktnchat_storage_seconds_bucket", storage)] == 4
    assert values[("ktnchat_loop_pass_seconds_count", (("worker", "w1"),))] == 4
    below = values[("ktnchat_loop_pass_seconds_bucket", (("le", "0.00025"), ("worker", "w1")))]
    assert below == 0


def test_gauges_are_read_on_scrape() -> None:
    live = {"n": 3}
    collector = MetricsCollector(
        Registry(), gauges={"ktnchat_users_online": ("users", lambda: live["n"])}
    )
    assert parsed(exposition(collector))[("ktnchat_users_online", (("worker", "0"),))] == 3
    live["n"] = 5
    assert parsed(exposition(collector))[("ktnchat_users_online", (("worker", "0"),))] == 5


def test_json_logs_have_stable_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(worker="2"))
    logger = logging.getLogger("ktnchat.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.warning(
            "%s kicked %s",
            "alice",
            "mallory",
            extra=log_fields(
                "kick", conn=7, user="mallory", room="lobby", peer="127.0.0.1:5", by="alice"
            ),
        )
        logger.info("plain line with no fields")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["event"] == "kick" and first["by"] == "alice" and first["conn"] == 7
    assert (first["user"], first["room"], first["peer"]) == ("mallory", "lobby", "127.0.0.1:5")
    assert first["level"] == "warning" and first["message"] == "alice kicked mallory"
    assert first["time"].endswith("Z") and first["worker"] == "2"
    assert second["event"] and "user" not in second


@pytest.fixture
def metrics_server() -> Iterator[str]:
    registry = Registry()
    registry.counters().deliveries += 42
    registry.counters().logins += 3
    body = exposition(MetricsCollector(registry))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_top_shows_the_figures(metrics_server: str) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert top_main([metrics_server, "--once"]) == 0
    screen = out.getvalue()
    assert "deliveries" in screen and "42" in screen
    assert any(line.startswith("logins") and " 3 " in line + " " for line in screen.splitlines())


def test_top_says_when_nobody_answers() -> None:
    assert top_main(["127.0.0.1:9", "--once"]) == 1
    assert metrics_url("h:1") == "http://h:1/metrics"
    assert metrics_url("https://h/x/metrics") == "https://h/x/metrics"
