# The bus publisher on a real Redis: pipelines are written without waiting and confirmed
# in order as Redis answers; a subscriber sees every PUBLISH in order; a Redis that dies,
# answers an error, or stops reading hands back every pipeline it had not confirmed.
# Every wait is bounded.
from __future__ import annotations

import os
import signal
import time
from typing import Any, Iterator, List, Tuple

import pytest
import redis

from ktnchat.cluster.publisher import Command, Publisher, PublishFailed
from tests.cluster.conftest import RedisServer
from tests.helpers import wait_until


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[Any]:
    made = redis.Redis.from_url(redis_server.url, socket_timeout=2, socket_connect_timeout=2)
    yield made
    made.close()


def publisher(client: Any) -> Publisher[str]:
    return Publisher(client.connection_pool.make_connection, timeout=0.5)


def warmed_up(client: Any) -> Publisher[str]:
    """A publisher whose connection is made and whose first pipeline Redis answered."""
    pub = publisher(client)
    pub.send(publishes("ch", 0, 1), "warm")
    assert [token for token, _ in confirm_all(pub)] == ["warm"]
    return pub


def publishes(channel: str, first: int, count: int) -> List[Command]:
    return [("PUBLISH", channel, f"m{n}") for n in range(first, first + count)]


def confirm_all(pub: Publisher[str], seconds: float = 5.0) -> List[Tuple[str, float]]:
    confirmed: List[Tuple[str, float]] = []

    def done() -> bool:
        confirmed.extend(pub.confirm())
        return pub.unconfirmed == 0

    wait_until(done, seconds)
    return confirmed


def test_pipelines_are_confirmed_in_order_and_heard_in_order(client: Any) -> None:
    listener = client.pubsub()
    listener.subscribe("ch")
    assert listener.get_message(timeout=5)["type"] == "subscribe"
    pub = publisher(client)
    try:
        confirmed: List[Tuple[str, float]] = []
        for index in range(20):
            confirmed += pub.send(publishes("ch", index * 10, 10), f"p{index}")
        confirmed += confirm_all(pub)
        assert [token for token, _ in confirmed] == [f"p{i}" for i in range(20)]
        assert all(waited >= 0 for _, waited in confirmed)
        heard = []
        deadline = time.monotonic() + 5
        while len(heard) < 200 and time.monotonic() < deadline:
            message = listener.get_message(timeout=1)
            if message is not None and message["type"] == "message":
                heard.append(message["data"].decode())
        assert heard == [f"m{n}" for n in range(200)]
    finally:
        assert pub.close() == []
        listener.close()


def test_a_redis_that_dies_hands_back_what_it_had_not_confirmed(
    client: Any, redis_server: RedisServer
) -> None:
    pub = warmed_up(client)
    redis_server.stop()
    sent = []
    with pytest.raises(PublishFailed) as failed:
        # A write may still land in the socket buffer before the end of file is seen;
        # bounded in attempts and time.
        deadline = time.monotonic() + 5
        for attempt in range(10_000):
            if time.monotonic() > deadline:
                break
            sent.append(f"after-{attempt}")
            pub.send(publishes("ch", 10 * attempt, 3), sent[-1])
            pub.confirm()
    assert failed.value.lost == sent  # nothing after the death was confirmed
    assert pub.unconfirmed == 0
    redis_server.start()
    assert pub.send(publishes("ch", 0, 1), "again") == []  # connects afresh
    assert [token for token, _ in confirm_all(pub)] == ["again"]
    pub.close()


def test_an_error_reply_fails_the_connection_and_loses_the_unconfirmed(client: Any) -> None:
    client.set("text", "not a number")
    pub = publisher(client)
    pub.send([("INCRBY", "text", "1")], "refused")
    with pytest.raises(PublishFailed) as failed:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # until Redis's answer arrives
            assert pub.confirm() == []
    assert failed.value.lost == ["refused"]
    assert "refused a PUBLISH" in str(failed.value)
    pub.close()


def test_a_redis_that_stops_reading_fails_the_send_within_its_timeout(
    client: Any, redis_server: RedisServer
) -> None:
    pub = warmed_up(client)
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        big: List[Command] = [("PUBLISH", "ch", "x" * 1_000_000)]
        sent = []
        with pytest.raises(PublishFailed) as failed:
            for index in range(200):  # ~200 MB at most: the buffers fill long before
                sent.append(f"big-{index}")
                pub.send(big, sent[-1])
        assert "did not take a pipeline" in str(failed.value)
        assert failed.value.lost == sent  # Redis read some, but answered none
        assert pub.unconfirmed == 0
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
        pub.close()
