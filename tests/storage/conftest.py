from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, List

import pytest

from ktnchat.storage import Storage
from tests.storage.adapters import ADAPTERS, available, drop_real_database


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> str:
    reason = available(request.param)
    if reason:
        pytest.skip(reason)
    return str(request.param)


@pytest.fixture
def open_store(adapter: str, tmp_path: Path) -> Iterator[Callable[[], Storage]]:
    """Open (or reopen) the adapter's store in this test's directory."""
    opener, _ = ADAPTERS[adapter]
    opened: List[Storage] = []

    def factory() -> Storage:
        store = opener(tmp_path)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()
    if adapter == "mongodb":
        drop_real_database(tmp_path)


@pytest.fixture
def store(open_store: Callable[[], Storage]) -> Storage:
    return open_store()


@pytest.fixture
def durable(adapter: str) -> bool:
    return bool(ADAPTERS[adapter][1])
