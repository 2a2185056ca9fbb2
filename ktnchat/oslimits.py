# The process's open-file limit, raised to what a server (or the load generator) needs.
# Rules: never above the hard limit, never lowers anything; a no-op where the `resource`
# module does not exist (Windows).
from __future__ import annotations


def raise_file_limit(wanted: int) -> None:
    """Let the process hold `wanted` sockets if the hard limit allows (Unix only)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
