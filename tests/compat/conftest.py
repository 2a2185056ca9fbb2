# Fixtures of the tests/compat tests: `python27`, a Python 2.7 that really runs, or a
# visible skip saying why there is none.
from __future__ import annotations

import pytest

from tests.compat.support import PY27_MISSING, find_python27


@pytest.fixture
def python27() -> str:
    path = find_python27()
    if path is None:
        pytest.skip(PY27_MISSING)
    return path
