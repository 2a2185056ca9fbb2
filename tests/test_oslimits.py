# raise_file_limit: raises the soft open-file limit up to what is wanted, never past the hard
# limit, never lowers it.
from __future__ import annotations

import pytest

from ktnchat.oslimits import raise_file_limit

resource = pytest.importorskip("resource")


def test_raises_the_soft_limit_and_never_lowers_it() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft < 64:
        pytest.skip(f"soft open-file limit {soft}: nothing to lower safely")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft - 16, hard))
        raise_file_limit(soft)
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)
        raise_file_limit(soft - 32)  # less than we have: unchanged
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)
        if hard != resource.RLIM_INFINITY:
            raise_file_limit(hard + 1000)  # more than allowed: up to the hard limit only
            assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
