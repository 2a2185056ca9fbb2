# The storage adapters under test, by name: how to open each one (and reopen it, for
# the durable ones). The contract suite runs every test once per adapter, as the
# `limits` library's `all_storage` does; adapters that cannot run here are skipped
# with a visible reason.
from __future__ import annotations

import importlib.util
import os
import uuid
from pathlib import Path
from typing import Callable, Dict, Optional

import pytest

from ktnchat.storage import Storage, storage_from_url

Opener = Callable[[Path], Storage]

MONGO_URL_ENV = "KTNCHAT_TEST_MONGO_URL"


def open_memory(tmp: Path) -> Storage:
    return storage_from_url("memory://")


def open_sqlite(tmp: Path) -> Storage:
    return storage_from_url(f"sqlite:///{tmp / 'chat.db'}")


def open_mongomock(tmp: Path) -> Storage:
    pytest.importorskip("mongomock", reason="mongomock is not installed")
    import mongomock

    from ktnchat.storage.mongodb import MongoStorage

    # One in-memory MongoDB per test directory, so a "reopen" sees the same data.
    client = _MOCK_CLIENTS.setdefault(str(tmp), mongomock.MongoClient())
    return MongoStorage(client, "ktnchat_test")


def open_real_mongo(tmp: Path) -> Storage:
    url = os.environ.get(MONGO_URL_ENV)
    if not url:
        pytest.skip(f"{MONGO_URL_ENV} is not set: no real MongoDB to test against")
    database = _REAL_DATABASES.setdefault(str(tmp), f"ktnchat_test_{uuid.uuid4().hex[:12]}")
    return storage_from_url(url.rstrip("/") + "/" + database)


_MOCK_CLIENTS: Dict[str, object] = {}
_REAL_DATABASES: Dict[str, str] = {}

# name -> (opener, durable: does data survive close() + open again?)
ADAPTERS: Dict[str, tuple] = {
    "memory": (open_memory, False),
    "sqlite": (open_sqlite, True),
    "mongomock": (open_mongomock, True),
    "mongodb": (open_real_mongo, True),
}


def available(name: str) -> Optional[str]:
    """Why an adapter cannot be tested here, or None if it can."""
    if name == "mongomock" and importlib.util.find_spec("mongomock") is None:
        return "mongomock is not installed"
    if name in ("mongomock", "mongodb") and importlib.util.find_spec("pymongo") is None:
        return "pymongo is not installed"
    return None


def drop_real_database(tmp: Path) -> None:
    database = _REAL_DATABASES.pop(str(tmp), None)
    if database:
        import pymongo

        client: pymongo.MongoClient = pymongo.MongoClient(os.environ[MONGO_URL_ENV])
        client.drop_database(database)
        client.close()
