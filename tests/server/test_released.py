# The released-message queue between a cluster's releasing threads and the only I/O
# loop: with real threads adding and waking while a real "loop" thread runs the posted
# drains, every message is delivered once, each producer's in its order, and a storage
# job's own post (drain first) takes what was added without a wake of its own.
from __future__ import annotations

import queue
import threading
from typing import Callable, List, Optional, Sequence, Tuple

from ktnchat.protocol import Response
from ktnchat.server.released import ReleasedQueue
from ktnchat.service.session import Session
from tests.helpers import wait_until


class Loop:
    """A thread running posted work in order, as an IOLoop does."""

    def __init__(self) -> None:
        self.work: queue.Queue[Optional[Callable[[], None]]] = queue.Queue()
        self.posts = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def post(self, work: Callable[[], None]) -> None:
        self.posts += 1
        self.work.put(work)

    def _run(self) -> None:
        while True:
            work = self.work.get()
            if work is None:
                return
            work()

    def stop(self) -> None:
        self.work.put(None)
        self.thread.join(10)


def message(producer: int, n: int) -> Response:
    return Response("message", f"{producer}:{n}", "x", "0")


def test_every_released_message_reaches_the_loop_once_in_each_producers_order() -> None:
    loop = Loop()
    delivered: List[Tuple[int, int]] = []

    def deliver(response: Response, members: Sequence[Session]) -> None:
        assert threading.current_thread() is loop.thread
        producer, n = str(response.content).split(":")
        delivered.append((int(producer), int(n)))

    released = ReleasedQueue(loop.post, deliver)
    per_producer = 2000

    def produce(producer: int) -> None:
        for n in range(per_producer):
            released.add(message(producer, n), ())
            released.wake()

    producers = [threading.Thread(target=produce, args=(p,)) for p in range(4)]
    try:
        for thread in producers:
            thread.start()
        for thread in producers:
            thread.join(30)
        wait_until(lambda: len(delivered) >= 4 * per_producer, 10)
        loop.work.put(lambda: None)  # a last no-op: nothing more may arrive after it
        wait_until(lambda: loop.work.empty(), 10)
    finally:
        loop.stop()
    assert len(delivered) == 4 * per_producer
    for producer in range(4):
        assert [n for p, n in delivered if p == producer] == list(range(per_producer))
    assert loop.posts < 4 * per_producer  # wakes were coalesced, not one post each


def test_a_jobs_own_post_drains_what_it_released_without_a_wake() -> None:
    loop = Loop()
    order: List[str] = []
    released = ReleasedQueue(loop.post, lambda r, m: order.append(str(r.content)))
    try:
        released.add(message(0, 1), ())
        released.add(message(0, 2), ())

        def finish() -> None:  # as ChatServer._finish does
            released.drain()
            order.append("finish")

        loop.post(finish)
        wait_until(lambda: "finish" in order, 10)
    finally:
        loop.stop()
    assert order == ["0:1", "0:2", "finish"]
    assert loop.posts == 1
