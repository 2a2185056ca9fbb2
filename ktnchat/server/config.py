# Front-end settings: sockets, limits and the compatibility behaviour for naive clients.
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from ktnchat.protocol import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_FRAME_BYTES,
    HistoryDelivery,
    HistoryEncoding,
)
from ktnchat.protocol.edition2014 import BacklogEncoding

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9998


@dataclass(frozen=True)
class ServerConfig:
    """How the TCP front-end listens, frames, paces and protects itself."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    io_threads: int = 1  # selector loops; each owns a share of the connections
    # Threads for requests that may block (store, Redis); 0: 1 alone, 2 in a cluster.
    worker_threads: int = 0
    listen_backlog: int = 1024
    reuse_port: bool = False  # SO_REUSEPORT: several worker processes share the port
    # The web listener (HTTP + WebSocket for browsers), off unless a port is given (0: any
    # free port); `web_origins` are origins allowed besides the host a page was served
    # from ("https://chat.example.org", for a reverse proxy in front).
    web_port: Optional[int] = None
    web_origins: Tuple[str, ...] = ()
    # Operational counters (ktnchat/metrics.py), read by GET /metrics on the web listener,
    # or only on `metrics_port` when it is set (its own HTTP listener, in the same I/O
    # loops; 0: any free port). `worker` labels this process's series (its cluster index).
    metrics: bool = True
    metrics_port: Optional[int] = None
    worker: str = "0"
    max_connections: int = 10_000  # more are refused with an error and closed
    max_connections_per_address: int = 100  # per client IP (a class behind one NAT fits)
    # Loopback is exempt by default: local tools and a proxy in front (nginx stream,
    # HAProxy) all connect from 127.0.0.1.
    cap_loopback: bool = False
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES  # one request larger than this: error + close
    max_depth: int = DEFAULT_MAX_DEPTH
    max_outbox_bytes: int = 4 * 1024 * 1024  # a client further behind than this is dropped
    read_pause_bytes: int = 256 * 1024  # stop reading a client while its replies pile up
    # SO_SNDBUF per client socket; 0 leaves the kernel's autotuning (up to tcp_wmem's max,
    # often 4 MiB, which a stalled reader fills before its outbox cap is reached).
    send_buffer_bytes: int = 0
    # Naive-client compatibility: until a connection sends `stream on`, each response
    # object goes in its own send(), at least `pace_interval` seconds apart, so
    # `json.loads(sock.recv(4096))` clients never see two objects in one read.
    pace_interval: float = 0.05
    pace_backlog: int = 256  # a paced connection this many objects behind starts streaming
    max_object_bytes: int = 1000  # history is split into objects of at most this size
    # Earlier messages (login, join, `history`) reach a client that has not said
    # `stream on` as ordinary `message` responses: every measured client survives those,
    # while each `history` shape kills some (docs/protocol.md). HISTORY: the seed's shape.
    history_delivery: HistoryDelivery = HistoryDelivery.MESSAGES
    history_encoding: HistoryEncoding = HistoryEncoding.JSON_STRINGS  # when it is `history`
    # 2014 clients' login backlog: JSON strings, which all 3 measured 2014 clients accept.
    backlog_encoding: BacklogEncoding = BacklogEncoding.JSON
    login_timeout: float = 300.0  # seconds to log in before being closed (0: no limit)
    frame_timeout: float = 30.0  # seconds a half-sent request may wait for its rest (0: no limit)
    idle_timeout: float = 0.0  # seconds without any request before being closed (0: no limit)
    close_linger: float = 5.0  # seconds to flush a final error before closing anyway
    maintenance_interval: float = 60.0  # seconds between retention runs
    # Seconds between asking the C allocator to return free memory (glibc's malloc_trim;
    # a few ms each); 0: never. Without it a crowd's buffers stay resident after it left.
    heap_trim_interval: float = 10.0
