# In a cluster, requests that need neither the store nor Redis stay on the I/O thread
# (as in one process); everything else goes to a worker thread.
from __future__ import annotations

from typing import Any

import pytest

from ktnchat.protocol import Request
from ktnchat.server.worker import StorageWorker
from ktnchat.service import ChatService
from ktnchat.storage import MemoryStorage
from tests.helpers import wait_until


@pytest.mark.parametrize(
    ("word", "content", "expected"),
    [
        ("help", None, False),
        ("stream", "on", False),
        ("no-such-request", None, False),
        ("msg", "hi", True),
        ("names", None, True),
        ("who", None, True),
        ("login", "alice", True),
        ("sendto", "bob hi", True),
    ],
)
def test_only_what_waits_on_the_store_or_redis_leaves_the_io_thread(
    word: str, content: Any, expected: bool
) -> None:
    service = ChatService(MemoryStorage())
    service.cluster = object()  # type: ignore[assignment]  # any link: only "is there one"
    assert service.needs_worker(Request(word, content)) is expected


def test_worker_threads_keep_each_shards_order() -> None:
    worker = StorageWorker(threads=3)
    assert worker.threads == 3
    seen: dict = {}
    worker.start()
    try:
        for i in range(300):
            shard = i % 7
            worker.submit(lambda s=shard, n=i: seen.setdefault(s, []).append(n), shard)
        wait_until(lambda: sum(len(v) for v in seen.values()) == 300, timeout=10)
        for shard, numbers in seen.items():
            assert numbers == sorted(numbers) and all(n % 7 == shard for n in numbers)
    finally:
        worker.stop()
