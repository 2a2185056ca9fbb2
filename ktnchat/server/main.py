# `ktnchat server`: parse options (each also an environment variable), build storage,
# service and server, run until SIGINT/SIGTERM, then shut down cleanly (no traceback).
# In a cluster (--workers N) this runs once as the supervisor, then once per worker with
# KTNCHAT_WORKER_INDEX set: a worker labels its metrics and JSON log lines with its index
# and serves /metrics on --metrics-port + index (each worker on a port of its own).
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, List, Optional
from urllib.parse import urlsplit

from ktnchat.cluster.link import ClusterUnavailable
from ktnchat.logs import configure as configure_logging
from ktnchat.oslimits import raise_file_limit
from ktnchat.protocol import HistoryDelivery, HistoryEncoding
from ktnchat.protocol.edition2014 import BacklogEncoding
from ktnchat.server.config import DEFAULT_HOST, DEFAULT_PORT, ServerConfig
from ktnchat.server.server import ChatServer
from ktnchat.service import ChatService, ServiceConfig
from ktnchat.service.flood import FloodConfig
from ktnchat.storage import ConfigurationError, Storage, StorageError, storage_from_url

log = logging.getLogger("ktnchat")
ENV_PREFIX = "KTNCHAT_"

_server_defaults = ServerConfig()
_service_defaults = ServiceConfig()
_flood_defaults = FloodConfig()


def _env_default(parser_dest: str, fallback: Any, convert: Callable[[str], Any]) -> Any:
    raw = os.environ.get(ENV_PREFIX + parser_dest.upper())
    if raw is None or raw == "":
        return fallback
    try:
        return convert(raw)
    except ValueError:
        raise SystemExit(
            f"ktnchat: bad value {raw!r} for {ENV_PREFIX}{parser_dest.upper()}"
        ) from None


def _flag(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ktnchat server",
        description="Run a KTN chat server. Every option can also be set with an environment "
        f"variable: {ENV_PREFIX}<OPTION> (e.g. {ENV_PREFIX}PORT=9998, {ENV_PREFIX}STORAGE=...).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )

    def option(
        name: str, convert: Callable[[str], Any], default: Any, help: str, **kw: Any
    ) -> None:
        dest = name.lstrip("-").replace("-", "_")
        parser.add_argument(
            name, type=convert, default=_env_default(dest, default, convert), help=help, **kw
        )

    option(
        "--host",
        str,
        DEFAULT_HOST,
        "address to listen on; 0.0.0.0 (or ::) listens on every interface",
    )
    option("--port", int, DEFAULT_PORT, "TCP port (0 picks a free one)")
    option(
        "--web-port",
        _optional_port,
        None,
        "also serve browsers: the web client, /ws (WebSocket) and /healthz on this port "
        "(0 picks a free one; off by default)",
    )
    option(
        "--metrics",
        _flag,
        True,
        "count what the server does (connections, requests, deliveries, latencies) for "
        "GET /metrics (Prometheus) and `ktnchat top`",
        metavar="on|off",
    )
    option(
        "--metrics-port",
        _optional_port,
        None,
        "serve /metrics (and /healthz) on this port of its own instead of on --web-port, "
        "e.g. one the internet cannot reach; worker i of --workers N uses this port + i "
        "(0 picks free ones; off by default: /metrics is then on --web-port, if that is on)",
    )
    option(
        "--web-origin",
        str,
        "",
        "comma-separated origins allowed to open /ws besides the page's own host, e.g. "
        "https://chat.example.org behind a TLS proxy",
    )
    option(
        "--workers",
        int,
        1,
        "worker processes sharing the port (needs --bus and a shared store: "
        "sqlite on one host, mongodb for several hosts)",
    )
    option(
        "--bus",
        str,
        "",
        "redis://HOST:PORT/DB joining a cluster: names, rooms and messages shared with "
        "every process using the same Redis",
    )
    option("--bus-namespace", str, "ktnchat", "prefix of the cluster's Redis keys")
    option(
        "--reuse-port", _flag, False, "listen with SO_REUSEPORT (set for workers)", metavar="on|off"
    )
    option(
        "--storage-wait",
        float,
        30.0,
        "seconds to keep retrying a store that cannot be reached at start-up",
    )
    option(
        "--retention-messages",
        int,
        _service_defaults.retention_messages,
        "keep at most this many messages per room (0: no limit)",
    )
    option(
        "--retention-days",
        float,
        _service_defaults.retention_days,
        "forget messages older than this many days (0: never)",
    )
    option("--flood", _flag, True, "flood control on or off", metavar="on|off")
    option(
        "--flood-message-rate",
        float,
        _flood_defaults.message_rate,
        "messages (msg, sendto) per second a user may send, sustained",
    )
    option(
        "--flood-message-burst",
        float,
        _flood_defaults.message_burst,
        "messages a user may send at once",
    )
    option(
        "--flood-request-rate",
        float,
        _flood_defaults.request_rate,
        "requests of any kind per second, sustained",
    )
    option(
        "--flood-request-burst",
        float,
        _flood_defaults.request_burst,
        "requests of any kind at once",
    )
    option(
        "--flood-mute-seconds",
        float,
        _flood_defaults.mute_seconds,
        "how long sustained flooding mutes a user (0: never mute)",
    )
    option("--max-rooms", int, _service_defaults.max_rooms, "most rooms the server keeps")
    option(
        "--admin-secret-file",
        str,
        "",
        "file holding the admin secret (or set KTNCHAT_ADMIN_SECRET; never give the secret "
        "itself on the command line)",
    )
    option(
        "--storage",
        str,
        "memory://",
        "where durable state lives: memory://, sqlite:///FILE, mongodb://HOST:PORT/DB",
    )
    option("--io-threads", int, _server_defaults.io_threads, "selector loops (I/O threads)")
    option(
        "--worker-threads",
        int,
        _server_defaults.worker_threads,
        "threads for requests that wait on the store or Redis (0: 1 for one process "
        "and on SQLite, 2 in a cluster on MongoDB; in a cluster the per-room sequencers "
        "keep each room's order)",
    )
    option(
        "--max-connections",
        int,
        _server_defaults.max_connections,
        "connections beyond this are refused with an error",
    )
    option(
        "--max-connections-per-address",
        int,
        _server_defaults.max_connections_per_address,
        "connections one client address may hold (0: no limit; loopback is exempt)",
    )
    option(
        "--frame-timeout",
        float,
        _server_defaults.frame_timeout,
        "seconds half a request may wait for the rest before the connection is closed "
        "(0: no limit)",
    )
    option(
        "--max-frame-bytes",
        int,
        _server_defaults.max_frame_bytes,
        "largest request accepted; a larger one gets an error and a close",
    )
    option(
        "--max-outbox-bytes",
        int,
        _server_defaults.max_outbox_bytes,
        "a client with more unread output than this is dropped",
    )
    option(
        "--send-buffer-bytes",
        int,
        _server_defaults.send_buffer_bytes,
        "kernel send buffer per client (0: the kernel's autotuning)",
    )
    option(
        "--pace-ms",
        float,
        _server_defaults.pace_interval * 1000,
        "gap between response objects to a client that has not sent `stream on` "
        "(0 turns pacing off for everyone)",
    )
    option(
        "--pace-backlog",
        int,
        _server_defaults.pace_backlog,
        "a paced client this many objects behind gets streamed output instead",
    )
    option(
        "--max-object-bytes",
        int,
        _server_defaults.max_object_bytes,
        "history responses are split into objects of at most this size",
    )
    option(
        "--history-delivery",
        HistoryDelivery,
        _server_defaults.history_delivery,
        "how earlier messages reach a client that has not said 'stream on': messages "
        "(ordinary message responses, which every measured client survives) or history "
        "(the seed's history response, in --history-encoding)",
        choices=list(HistoryDelivery),
    )
    option(
        "--history-encoding",
        HistoryEncoding,
        _server_defaults.history_encoding,
        "how a history response lists messages: json-strings (as the course's reference "
        "server), objects, or json-text",
        choices=list(HistoryEncoding),
    )
    option(
        "--backlog-encoding",
        BacklogEncoding,
        _server_defaults.backlog_encoding,
        "how a 2014-edition login answer lists the backlog: plain strings or json strings",
        choices=list(BacklogEncoding),
    )
    option(
        "--history-on-login", int, _service_defaults.history_on_login, "messages replayed at login"
    )
    option(
        "--history-max",
        int,
        _service_defaults.history_max,
        "most messages one history request returns",
    )
    option(
        "--max-message-chars", int, _service_defaults.max_message_chars, "longest message accepted"
    )
    option(
        "--max-username-chars",
        int,
        _service_defaults.max_username_chars,
        "longest username accepted",
    )
    option(
        "--announce-max-members",
        int,
        _service_defaults.announce_max_members,
        "rooms larger than this get no join/leave notices",
    )
    option(
        "--login-timeout",
        float,
        _server_defaults.login_timeout,
        "seconds a connection may stay without logging in (0: no limit)",
    )
    option(
        "--idle-timeout",
        float,
        _server_defaults.idle_timeout,
        "seconds a connection may stay silent (0: no limit)",
    )
    option(
        "--heap-trim-interval",
        float,
        _server_defaults.heap_trim_interval,
        "seconds between returning freed memory to the OS (glibc only; 0: never)",
    )
    option("--utc", _flag, False, "timestamps in UTC instead of local time", nargs="?", const=True)
    option(
        "--log-level",
        str.upper,
        "INFO",
        "DEBUG, INFO, WARNING or ERROR",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )
    option(
        "--log-format",
        str.lower,
        "human",
        "human (one readable line per event) or json (one JSON object per line, stable "
        "field names: time, level, event, conn, user, room, peer, by, ...; for Loki or ELK)",
        choices=["human", "json"],
    )
    return parser


def _optional_port(text: str) -> Optional[int]:
    """A port number, or None for "" / "off" (the listener stays off)."""
    if text.strip().lower() in ("", "off", "none", "no"):
        return None
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(f"not a port: {text}")
    return port


def configs_from_args(args: argparse.Namespace) -> tuple[ServerConfig, ServiceConfig]:
    server = ServerConfig(
        host=args.host,
        port=args.port,
        io_threads=args.io_threads,
        worker_threads=max(0, args.worker_threads),
        max_connections=args.max_connections,
        max_connections_per_address=args.max_connections_per_address,
        frame_timeout=args.frame_timeout,
        max_frame_bytes=args.max_frame_bytes,
        max_outbox_bytes=args.max_outbox_bytes,
        send_buffer_bytes=args.send_buffer_bytes,
        pace_interval=max(0.0, args.pace_ms / 1000.0),
        pace_backlog=args.pace_backlog,
        max_object_bytes=args.max_object_bytes,
        history_delivery=args.history_delivery,
        history_encoding=args.history_encoding,
        backlog_encoding=args.backlog_encoding,
        reuse_port=bool(args.reuse_port),
        web_port=args.web_port,
        web_origins=tuple(o.strip() for o in args.web_origin.split(",") if o.strip()),
        metrics=bool(args.metrics),
        metrics_port=_worker_port(args.metrics_port, worker_index()),
        worker=worker_index() or "0",
        login_timeout=args.login_timeout,
        idle_timeout=args.idle_timeout,
        heap_trim_interval=max(0.0, args.heap_trim_interval),
    )
    service = ServiceConfig(
        history_on_login=args.history_on_login,
        history_max=args.history_max,
        max_message_chars=args.max_message_chars,
        max_username_chars=args.max_username_chars,
        announce_max_members=args.announce_max_members,
        utc=bool(args.utc),
        retention_messages=args.retention_messages,
        retention_days=args.retention_days,
        max_rooms=args.max_rooms,
        flood=FloodConfig(
            enabled=args.flood,
            message_rate=args.flood_message_rate,
            message_burst=args.flood_message_burst,
            request_rate=args.flood_request_rate,
            request_burst=args.flood_request_burst,
            mute_seconds=args.flood_mute_seconds,
        ),
    )
    return server, service


def worker_index() -> Optional[str]:
    """This process's index in a cluster (set by the supervisor), or None."""
    index = os.environ.get(ENV_PREFIX + "WORKER_INDEX", "").strip()
    return index if index.isdigit() else None


def _worker_port(port: Optional[int], index: Optional[str]) -> Optional[int]:
    """Worker i of a cluster listens on port + i (a free port each if port is 0)."""
    if port is None or port == 0 or index is None:
        return port
    return port + int(index)


def read_admin_secret(path: str) -> Optional[str]:
    """The admin secret from `path` (first line) or $KTNCHAT_ADMIN_SECRET; None if neither.

    Raises:
        OSError: the file cannot be read.
        ValueError: the secret is shorter than 12 characters.
    """
    secret = os.environ.get(ENV_PREFIX + "ADMIN_SECRET", "")
    if path:
        with open(path, encoding="utf-8") as handle:
            secret = handle.readline().strip()
    if not secret:
        return None
    if len(secret) < 12:
        raise ValueError("the admin secret must be at least 12 characters long")
    return secret


def open_storage(url: str, wait: float, sleep: Callable[[float], None] = time.sleep) -> Storage:
    """Open the store, retrying with backoff for up to `wait` seconds if it is unreachable.

    A container may start before its database answers. Configuration errors (bad URL,
    missing driver) are not retried.

    Raises:
        ConfigurationError: the URL is wrong.
        StorageError: the store was still unreachable when `wait` ran out.
    """
    deadline = time.monotonic() + wait
    delay = 0.5
    while True:
        try:
            return storage_from_url(url)
        except StorageError as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            log.warning("storage not reachable (%s); retrying in %.1f s", exc, min(delay, left))
            sleep(min(delay, left))
            delay = min(delay * 2, 5.0)


def cluster_refusal(args: argparse.Namespace) -> Optional[str]:
    """Why this --workers/--bus combination cannot work, or None."""
    if args.workers > 1 and not args.bus:
        return (
            "--workers > 1 needs --bus redis://HOST:PORT/0: users on different workers must "
            "share names, rooms and messages"
        )
    if (args.workers > 1 or args.bus) and urlsplit(args.storage).scheme == "memory":
        return (
            "a cluster needs a shared store, and memory:// is private to each process: "
            "use --storage sqlite:///FILE (one host) or mongodb://HOST/DB (several hosts)"
        )
    return None


def metrics_refusal(args: argparse.Namespace, config: ServerConfig) -> Optional[str]:
    """Why these metrics options cannot work, or None."""
    if args.metrics_port is None:
        return None
    if not args.metrics:
        return "--metrics-port needs --metrics on"
    if config.metrics_port is not None and config.metrics_port > 65535:
        return f"--metrics-port {args.metrics_port} + worker index is not a port"
    try:
        import h11  # noqa: F401 - the metrics listener is the web endpoint's HTTP
        import prometheus_client  # noqa: F401
    except ImportError:
        return "--metrics-port needs h11 and prometheus_client: pip install 'ktnchat[web,metrics]'"
    return None


def main(argv: Optional[List[str]] = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(raw)
    configure_logging(args.log_level, args.log_format, worker=worker_index())
    server_config, service_config = configs_from_args(args)
    refusal = cluster_refusal(args) or metrics_refusal(args, server_config)
    if refusal is not None:
        print(f"ktnchat server: {refusal}", file=sys.stderr)
        return 2
    if args.workers > 1:
        from ktnchat.cluster.supervisor import Supervisor

        try:
            supervisor = Supervisor(raw, args.host, args.port, args.workers)
        except OSError as exc:
            print(f"ktnchat server: cannot use {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 2
        return supervisor.run()
    try:
        storage = open_storage(args.storage, args.storage_wait)
    except (ConfigurationError, StorageError) as exc:
        print(f"ktnchat server: {exc}", file=sys.stderr)
        return 2
    log.info("storage: %s", storage.describe())
    raise_file_limit(server_config.max_connections + 64)
    try:
        secret = read_admin_secret(args.admin_secret_file)
        service = ChatService(storage, service_config, admin_secret=secret)
    except (OSError, ValueError, StorageError) as exc:
        print(f"ktnchat server: {exc}", file=sys.stderr)
        storage.close()
        return 2
    log.info("admin secret: %s", "configured" if secret else "none (no admins)")
    if args.bus:
        from ktnchat.cluster.link import ClusterLink

        try:
            service.cluster = ClusterLink(args.bus, args.bus_namespace)
        except ClusterUnavailable as exc:
            print(f"ktnchat server: {exc}", file=sys.stderr)
            storage.close()
            return 2
    server = ChatServer(service, server_config)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        log.info("received %s; shutting down", signal.Signals(signum).name)
        stop.set()

    # Handlers first: whoever sees the "listening" line may signal at once.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        server.start()
        from ktnchat.cluster.supervisor import report_ready

        report_ready()
    except OSError as exc:
        print(
            f"ktnchat server: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        storage.close()
        return 2
    except ClusterUnavailable as exc:
        print(f"ktnchat server: cannot join the cluster: {exc}", file=sys.stderr)
        server.shutdown()
        return 2
    while not stop.wait(0.5):
        if server.crashed:
            log.error("an I/O loop crashed; stopping")
            break
    server.shutdown()
    return 1 if server.crashed else 0


if __name__ == "__main__":
    raise SystemExit(main())
