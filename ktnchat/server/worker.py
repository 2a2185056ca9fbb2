# The storage worker: where requests that touch a blocking store are handled.
#
# Rules:
# - I/O threads never call a store that can block (Storage.INLINE_SAFE is False). They
#   hand such requests to this single worker thread, which runs them in FIFO order (one
#   writer; a room's messages keep the order in which they were stored) and hands each
#   Outcome back to the connection's own loop with IOLoop.post().
# - A connection has at most one request here at a time (see Connection.busy), so the
#   queue holds at most one job per connection: it is bounded by the connection cap.
# - A handler that raises (a bug) is logged and answered with an `error`; the worker
#   goes on.
from __future__ import annotations

import logging
import queue
import threading
from typing import Callable, Optional

log = logging.getLogger("ktnchat.server")

Job = Callable[[], None]


class StorageWorker:
    """One thread running jobs in submission order."""

    def __init__(self, name: str = "ktnchat-storage") -> None:
        self._jobs: queue.Queue[Optional[Job]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

    def backlog(self) -> int:
        return self._jobs.qsize()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the queued jobs, then end the thread."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except Exception:  # a bug in a handler: keep serving everyone else
                log.exception("storage job failed")
