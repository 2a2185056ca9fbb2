# Storage adapters chosen by URL, as the `limits` library does it.
# Rules: `storage_from_url` is the one way to build a store; drivers are imported only
# for their own scheme, so the memory store needs nothing beyond the standard library.
from __future__ import annotations

from urllib.parse import urlsplit

from ktnchat.storage.base import (
    SCHEMES,
    SERVER_WIDE,
    Account,
    AuditEntry,
    Ban,
    ConfigurationError,
    RoomRecord,
    Storage,
    StorageError,
    StoredMessage,
    key,
    register_scheme,
)
from ktnchat.storage.memory import MemoryStorage
from ktnchat.storage.sqlite import SQLiteStorage  # registers sqlite:// (standard library only)

register_scheme(MemoryStorage.SCHEME, MemoryStorage.from_url)


def _open_mongodb(url: str) -> Storage:
    from ktnchat.storage.mongodb import MongoStorage  # pymongo is imported only when used

    return MongoStorage.from_url(url)


register_scheme("mongodb", _open_mongodb)
register_scheme("mongodb+srv", _open_mongodb)


def storage_from_url(url: str) -> Storage:
    """Build the storage adapter a URL names, e.g. `memory://`.

    Raises:
        ConfigurationError: unknown scheme, missing driver or bad option.
    """
    scheme = urlsplit(url).scheme
    factory = SCHEMES.get(scheme)
    if factory is None:
        known = ", ".join(f"{name}://" for name in sorted(SCHEMES))
        raise ConfigurationError(f"unknown storage URL {url!r}: supported schemes are {known}")
    return factory(url)


__all__ = [
    "SCHEMES",
    "SERVER_WIDE",
    "Account",
    "AuditEntry",
    "Ban",
    "ConfigurationError",
    "MemoryStorage",
    "RoomRecord",
    "SQLiteStorage",
    "Storage",
    "StorageError",
    "StoredMessage",
    "key",
    "register_scheme",
    "storage_from_url",
]
