# The storage worker: where requests that touch a blocking store (or, in a cluster, Redis)
# are handled, off the I/O threads.
#
# Rules:
# - I/O threads never call a store that can block (Storage.INLINE_SAFE is False), nor
#   Redis. They hand such requests here, and each Outcome goes back to the connection's
#   own loop with IOLoop.post().
# - One or more threads, each with its own FIFO queue. A job names a shard (the
#   connection's session id): the same shard always runs on the same thread, so one
#   connection's requests (and its close) keep their order. One process uses one thread:
#   its rooms keep the order in which messages were stored because one writer stores
#   them. A cluster uses several: there the per-room sequencer (ktnchat/cluster/order.py)
#   gives every room one order, whichever thread stored its messages.
# - A connection has at most one request here at a time (see Connection.busy), so the
#   queues hold at most one job per connection: they are bounded by the connection cap.
# - A handler that raises (a bug) is logged; the worker goes on.
# - on_idle (if set) runs on each thread whenever its queue runs dry after a job, and at
#   least every IDLE_EVERY jobs under a steady load: work that is cheaper done once for
#   many jobs (a cluster sends what they published as one pipeline) and must not wait
#   for long.
from __future__ import annotations

import logging
import queue
import threading
from typing import Callable, List, Optional

log = logging.getLogger("ktnchat.server")

Job = Callable[[], None]

IDLE_EVERY = 32  # most jobs between two on_idle calls


class StorageWorker:
    """`threads` threads running jobs, each shard's in submission order."""

    def __init__(
        self,
        name: str = "ktnchat-storage",
        threads: int = 1,
        on_idle: Optional[Callable[[], None]] = None,
    ) -> None:
        count = max(1, threads)
        self.on_idle = on_idle
        self._queues: List[queue.Queue[Optional[Job]]] = [queue.Queue() for _ in range(count)]
        self._threads = [
            threading.Thread(
                target=self._run,
                args=(jobs,),
                name=name if count == 1 else f"{name}-{index}",
                daemon=True,
            )
            for index, jobs in enumerate(self._queues)
        ]

    @property
    def threads(self) -> int:
        return len(self._threads)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, job: Job, shard: int = 0) -> None:
        self._queues[shard % len(self._queues)].put(job)

    def backlog(self) -> int:
        return sum(jobs.qsize() for jobs in self._queues)

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the queued jobs, then end the threads."""
        for jobs, thread in zip(self._queues, self._threads):
            if thread.is_alive():
                jobs.put(None)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    def _idle(self) -> None:
        on_idle = self.on_idle
        if on_idle is not None:
            try:
                on_idle()
            except Exception:  # a bug: the jobs go on
                log.exception("storage worker's idle work failed")

    def _run(self, jobs: queue.Queue[Optional[Job]]) -> None:
        since_idle = 0
        while True:
            if since_idle and (since_idle >= IDLE_EVERY or jobs.empty()):
                since_idle = 0
                self._idle()
            job = jobs.get()
            if job is None:
                self._idle()  # what the last jobs left
                return
            since_idle += 1
            try:
                job()
            except Exception:  # a bug in a handler: keep serving everyone else
                log.exception("storage job failed")
