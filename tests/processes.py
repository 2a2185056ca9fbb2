# The real CLI (`python -m ktnchat server`) as a child process, for tests that need a
# separate process: signals, kill -9, restarts. Every wait is bounded; kill() always
# leaves no process behind.
from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
START_SECONDS = 30.0  # the most we wait for "listening on" (a loaded 2-core machine)
EXIT_SECONDS = 15.0  # the most we wait for an exit after a signal
LISTENING = re.compile(r"listening on (\S+):(\d+)")


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("KTNCHAT_PORT", None)
    env.pop("KTNCHAT_STORAGE", None)
    return env


class ServerProcess:
    """`python -m ktnchat server ...`; stderr is collected line by line by a thread."""

    def __init__(self, *options: str, launcher: Optional[List[str]] = None) -> None:
        argv = [sys.executable, *(launcher or ["-m", "ktnchat", "server"]), *options]
        self.proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: kill() takes its workers too
        )
        self.lines: List[str] = []
        self._lines: queue.Queue[Optional[str]] = queue.Queue()
        self.stdout = b""
        self._err = threading.Thread(target=self._read_stderr, daemon=True)
        self._out = threading.Thread(target=self._read_stdout, daemon=True)
        self._err.start()
        self._out.start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        self.stdout = self.proc.stdout.read()

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait_listening(self) -> Tuple[str, int]:
        """The address from the "listening on HOST:PORT" log line (bounded wait)."""
        deadline = time.monotonic() + START_SECONDS
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no 'listening on' line in time; stderr:\n{self.stderr}")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(
                    f"server exited ({self.proc.wait(5)}) before listening:\n{self.stderr}"
                )
            found = LISTENING.search(line)
            if found:
                return found.group(1), int(found.group(2))

    def wait_signal_handlers(self) -> None:
        """Wait until the process catches SIGTERM (main() installs it after SIGINT).

        The "listening" line is logged before main() installs its handlers, so a signal
        sent at once could meet the default action; /proc shows when they are in place.
        """
        status = Path(f"/proc/{self.proc.pid}/status")
        if not status.exists():
            return  # not Linux: nothing to observe
        deadline = time.monotonic() + START_SECONDS
        wanted = (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGINT - 1))
        while True:
            caught = 0
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("SigCgt:"):
                        caught = int(line.split()[1], 16)
            except OSError:
                pass
            if caught & wanted == wanted:
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"signal handlers never installed; stderr:\n{self.stderr}")
            time.sleep(0.01)

    def wait_exit(self, timeout: float = EXIT_SECONDS) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"server still running {timeout}s after the signal; stderr:\n{self.stderr}"
            ) from None
        self._err.join(10)
        self._out.join(10)
        return code

    def kill(self) -> None:
        """SIGKILL the server and everything it started (a supervisor's workers), even if
        the server itself has already exited."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._err.join(10)
        self._out.join(10)
