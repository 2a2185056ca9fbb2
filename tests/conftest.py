from __future__ import annotations

from typing import Any, Callable, Iterator, List

import pytest

from ktnchat.server import ChatServer
from tests.helpers import start_server


@pytest.fixture
def server_factory() -> Iterator[Callable[..., ChatServer]]:
    """Start servers with chosen options; every one is shut down after the test."""
    started: List[ChatServer] = []

    def factory(**options: Any) -> ChatServer:
        server = start_server(**options)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.shutdown()


@pytest.fixture
def server(server_factory: Callable[..., ChatServer]) -> ChatServer:
    """A default server (paced output, memory storage) on a free loopback port."""
    return server_factory()
