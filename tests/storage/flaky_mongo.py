# A MongoDB that can go down: wraps a mongomock client so that, while `Outage.down` is
# set, every driver call raises the error an unreachable server gives. Shared by the
# adapter tests and the server's outage tests.
from __future__ import annotations

from typing import Any, List, Optional, Set

import pymongo.errors


class Outage:
    """Shared switch: while `down`, every driver call raises like an unreachable server.

    `only` limits the failure to those method names (e.g. {"insert_one"}).
    """

    def __init__(self) -> None:
        self.down = False
        self.only: Optional[Set[str]] = None
        self.error: Exception = pymongo.errors.ServerSelectionTimeoutError("no servers found")
        self.calls: List[str] = []


class FlakyObject:
    def __init__(self, inner: Any, outage: Outage) -> None:
        self._inner = inner
        self._outage = outage

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr
        outage = self._outage

        def call(*args: Any, **kwargs: Any) -> Any:
            outage.calls.append(name)
            if outage.down and (outage.only is None or name in outage.only):
                raise outage.error
            return attr(*args, **kwargs)

        return call


class FlakyDatabase(FlakyObject):
    def __getitem__(self, name: str) -> FlakyObject:
        return FlakyObject(self._inner[name], self._outage)


class FlakyClient(FlakyObject):
    def __getitem__(self, name: str) -> FlakyDatabase:
        return FlakyDatabase(self._inner[name], self._outage)
