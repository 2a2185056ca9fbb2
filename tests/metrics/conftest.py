from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import pytest


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[object]:
    """A real redis-server on a free port (the cluster tests' own), stopped afterwards."""
    pytest.importorskip("redis", reason="redis-py is not installed (pip install '.[cluster]')")
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    from tests.cluster.conftest import RedisServer

    server = RedisServer(tmp_path)
    yield server
    server.stop()
