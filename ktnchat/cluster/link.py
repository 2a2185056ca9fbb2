# The cluster link: cluster-wide state and the message bus, on Redis.
#
# Rules:
# - Names: one hash maps each name key to "worker\tname\troom". A claim is atomic (a Lua
#   script) and succeeds if the name is free or held by a worker whose heartbeat key has
#   expired — a worker that dies releases its names within HEARTBEAT_TTL seconds.
# - Each worker refreshes `alive:<worker>` every HEARTBEAT_EVERY seconds from its own
#   thread; readers ignore entries of workers that are not alive.
# - The bus is three kinds of pub/sub channel, so a worker hears only what concerns its
#   users: `room:<key>` (room events; subscribed while the room has local members),
#   `worker:<id>` (private messages and actions for this worker's users; the publisher
#   looks the user's worker up in the names hash) and `control` (cluster-wide cache
#   changes: bans, mutes, topics, deleted rooms). See events.route().
# - Subscribing runs on its own thread, which reconnects with backoff when Redis goes away
#   and follows the wanted set of rooms. Each confirmed subscription to a room channel is
#   reported (on_room_subscribed), so the server catches that room up from the store:
#   pub/sub keeps nothing for an absent subscriber, the store keeps every message.
# - Publishing never waits on Redis: publish_many() queues the events and returns. The
#   queue is sent in order, as one pipeline, by whichever thread comes first: the storage
#   thread that queued a burst (when it runs out of jobs; wake=False), or the publisher
#   thread (woken for everyone else's events). Sending does not wait for the replies
#   (ktnchat/cluster/publisher.py): they are read later, confirming the oldest first.
#   Consecutive events for one channel go as one `batch` event (events.py). The queue is
#   bounded (PUBLISH_QUEUE_LIMIT events); what cannot be sent or is not confirmed (Redis
#   down, queue full, the connection lost before Redis answered) is counted and reported
#   to the caller's `on_lost`, so the rooms concerned are announced once Redis is back —
#   the store keeps every message, so nothing is lost to readers, only delayed.
# - Every event names its worker first ('{"w":"<id>",...'), so the bus thread drops its
#   own events (which it hears on the room channels it follows) without decoding them.
# - Every call has a short timeout. After a failure, calls fail fast for a backoff period
#   (ClusterUnavailable), so a Redis outage costs each request milliseconds, not seconds.
# - redis-py is imported only here, and only when a link is made.
from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Set, Tuple

from ktnchat.cluster import events
from ktnchat.cluster.publisher import Command, Publisher, PublishFailed
from ktnchat.metrics import Registry

log = logging.getLogger("ktnchat.cluster")

HEARTBEAT_EVERY = 1.0
HEARTBEAT_TTL = 5  # seconds a worker's names survive it
BUS_POLL_SECONDS = 0.02  # the bus thread's longest wait before following a room change
PUBLISH_QUEUE_LIMIT = 10_000  # events waiting for the publisher; past it they are lost
PUBLISH_BATCH_LIMIT = 500  # most events in one pipeline
PUBLISH_TIMEOUT = 0.5  # most a send waits for room in the socket buffer
CONFIRM_POLL_SECONDS = 0.05  # how often the publisher reads replies while any are due
STRAY_POLL_SECONDS = 0.25  # the publisher also sends what a wake=False caller left queued

OnLost = Callable[[List[Dict[str, Any]]], None]
Sent = Tuple[List[Dict[str, Any]], Optional[OnLost]]  # a queued batch and its on_lost

_CLAIM = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local owner = string.match(current, '^([^\\t]*)')
  if owner ~= ARGV[3] and redis.call('EXISTS', ARGV[4] .. owner) == 1 then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

_IF_MINE = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and string.match(current, '^([^\\t]*)') == ARGV[3] then
  if ARGV[2] == '' then
    redis.call('HDEL', KEYS[1], ARGV[1])
  else
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  end
  return 1
end
return 0
"""


class ClusterUnavailable(Exception):
    """Redis cannot be reached now; cluster-wide operations are refused."""


class ClusterLink:
    """One worker's connection to the cluster (Redis)."""

    def __init__(self, url: str, namespace: str = "ktnchat", worker: Optional[str] = None) -> None:
        try:
            import redis
        except ImportError:
            raise ClusterUnavailable(
                "--bus redis:// needs redis-py: pip install 'ktnchat[cluster]'"
            ) from None
        self._redis_module = redis
        self.url = url
        self.worker = worker or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._prefix = f"{namespace}:"
        self._names_key = self._prefix + "names"
        self._alive_prefix = self._prefix + "alive:"
        self._control = self._prefix + "control"
        self._room_prefix = self._prefix + "room:"
        self._worker_prefix = self._prefix + "worker:"
        self._own_channel = self._worker_prefix + self.worker
        self._rooms_wanted: Set[str] = set()
        self._rooms_changed = threading.Event()
        self._rooms_heard: Set[str] = set()  # room channels whose subscription is confirmed
        self._heard = threading.Condition()
        self.client = redis.Redis.from_url(
            url, socket_timeout=0.5, socket_connect_timeout=0.5, health_check_interval=10
        )
        self._claim = self.client.register_script(_CLAIM)
        self._if_mine = self.client.register_script(_IF_MINE)
        self._lock = threading.Lock()
        self._down_since: Optional[float] = None
        self._retry_at = 0.0
        self._backoff = 0.2
        self._lost_publishes = 0
        self._stop = threading.Event()
        self._handler: Optional[Callable[[Dict[str, Any]], None]] = None
        # Called (on the thread that noticed) when Redis is back: re-claim local names,
        # which a restarted Redis without persistence has forgotten.
        self.on_recovered: Optional[Callable[[], None]] = None
        # Called on the bus thread once a room channel's subscription is confirmed.
        self.on_room_subscribed: Optional[Callable[[str], None]] = None
        self._threads: List[threading.Thread] = []
        self._alive_cache: Tuple[float, Dict[str, bool]] = (0.0, {})
        self.metrics: Optional[Registry] = None  # publish latency and losses, metrics on
        self._own_prefix = events.dumps({"w": self.worker})[:-1] + ","
        self._own_marker = self._own_prefix.encode("utf-8")
        self._outgoing: Deque[Sent] = deque()
        self._outgoing_count = 0
        self._outgoing_ready = threading.Condition(threading.Lock())
        self._publishing = False  # a sender holds a batch it has not sent yet
        self._send_lock = threading.Lock()  # one sender at a time, in queue order
        # Its own connection (not the pool's), made on first use.
        self._publisher: Publisher[List[Sent]] = Publisher(
            self.client.connection_pool.make_connection, PUBLISH_TIMEOUT
        )

    # -- life cycle -----------------------------------------------------------------------

    def start(self, handler: Callable[[Dict[str, Any]], None]) -> None:
        """Start the heartbeat and the bus subscription; `handler` gets other workers'
        events on the subscriber thread."""
        self._handler = handler
        self.call(lambda: self.client.set(self._alive_prefix + self.worker, "1", ex=HEARTBEAT_TTL))
        threads = (
            (self._heartbeat, "heartbeat"),
            (self._subscribe, "bus"),
            (self._publish, "publish"),
        )
        for target, name in threads:
            thread = threading.Thread(target=target, name=f"ktnchat-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("cluster: worker %s on %s", self.worker, self._safe_url())

    def stop(self) -> None:
        """Leave the cluster: stop the threads and drop this worker's names."""
        self.flush(2.0)
        self._stop.set()
        with self._outgoing_ready:
            self._outgoing_ready.notify_all()
        try:
            names = self.client.hgetall(self._names_key)
            mine = [k for k, v in names.items() if _text(v).split("\t", 1)[0] == self.worker]
            if mine:
                self.client.hdel(self._names_key, *mine)
            self.client.delete(self._alive_prefix + self.worker)
        except Exception as exc:  # leaving anyway: the heartbeat expiry frees the names
            log.info("cluster: could not clean up on leaving: %s", exc)
        for thread in self._threads:
            thread.join(5)
        with self._send_lock:
            self._lose_pipelines(self._publisher.close())
        self.client.close()

    def _safe_url(self) -> str:
        return self.url.split("@")[-1]

    # -- the breaker ----------------------------------------------------------------------

    def call(self, action: Callable[[], Any]) -> Any:
        """Run a Redis call through the breaker.

        Raises:
            ClusterUnavailable: Redis failed now or recently.
        """
        now = time.monotonic()
        with self._lock:
            if self._down_since is not None and now < self._retry_at:
                raise ClusterUnavailable("cluster unavailable (Redis)")
        try:
            result = action()
        except self._redis_module.RedisError as exc:
            self._failed(exc)
            raise ClusterUnavailable(f"cluster unavailable (Redis: {exc})") from exc
        self._recovered()
        return result

    def _failed(self, exc: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            if self._down_since is None:
                self._down_since = now
                self._backoff = 0.2
                log.warning("cluster: Redis unreachable: %s", exc)
            else:
                self._backoff = min(self._backoff * 2, 5.0)
            self._retry_at = now + self._backoff

    def _recovered(self) -> None:
        with self._lock:
            if self._down_since is None:
                return
            down = time.monotonic() - self._down_since
            self._down_since = None
            lost, self._lost_publishes = self._lost_publishes, 0
        log.warning(
            "cluster: Redis back after %.1f s; %d event(s) this worker could not publish "
            "were lost (their local delivery happened; stored messages among them reach "
            "the other workers' users from the store)",
            down,
            lost,
        )
        if self.on_recovered is not None:
            try:
                self.on_recovered()
            except Exception:
                log.exception("cluster: re-claiming names after recovery failed")

    # -- names and rooms ------------------------------------------------------------------

    def _entry(self, name: str, room: Optional[str]) -> str:
        return f"{self.worker}\t{name}\t{room or ''}"

    def claim(self, key: str, name: str, room: Optional[str]) -> bool:
        """Take `key` cluster-wide (free, or held by a dead worker)."""
        result = self.call(
            lambda: self._claim(
                keys=[self._names_key],
                args=[key, self._entry(name, room), self.worker, self._alive_prefix],
            )
        )
        return bool(result)

    def reassert(self, entries: List[Tuple[str, str, Optional[str]]]) -> List[str]:
        """Re-claim (key, name, room) entries of local users; returns keys now held
        elsewhere (someone took the name while Redis had forgotten it)."""
        lost = []
        for key, name, room in entries:
            if not self.claim(key, name, room):
                lost.append(key)
        return lost

    def release(self, key: str) -> None:
        self.call(lambda: self._if_mine(keys=[self._names_key], args=[key, "", self.worker]))

    def set_room(self, key: str, name: str, room: Optional[str]) -> None:
        self.call(
            lambda: self._if_mine(
                keys=[self._names_key], args=[key, self._entry(name, room), self.worker]
            )
        )

    def online(self) -> List[Tuple[str, str, str]]:
        """(worker, name, room key) of every user on a live worker."""
        raw = self.call(lambda: self.client.hgetall(self._names_key))
        entries = []
        for value in raw.values():
            worker, name, room = [*_text(value).split("\t"), "", ""][:3]
            entries.append((worker, name, room))
        alive = self._alive({worker for worker, _, _ in entries})
        return [entry for entry in entries if alive.get(entry[0], False)]

    def locate(self, key: str) -> Optional[Tuple[str, str]]:
        """(worker, name) holding `key`, if that worker is alive."""
        value = self.call(lambda: self.client.hget(self._names_key, key))
        if value is None:
            return None
        worker, name = [*_text(value).split("\t"), ""][:2]
        return (worker, name) if self._alive({worker}).get(worker, False) else None

    def _alive(self, workers: Any) -> Dict[str, bool]:
        now = time.monotonic()
        stamp, cached = self._alive_cache
        if now - stamp < 0.5 and all(w in cached for w in workers):
            return cached
        ordered = sorted(workers)
        values = self.call(lambda: self.client.mget([self._alive_prefix + w for w in ordered]))
        fresh = {w: v is not None for w, v in zip(ordered, values)}
        fresh[self.worker] = True
        self._alive_cache = (now, fresh)
        return fresh

    # -- the bus --------------------------------------------------------------------------

    def want_rooms(self, rooms: Iterable[str]) -> None:
        """The rooms (keys) whose channels this worker should hear; followed by the bus
        thread within a few milliseconds."""
        wanted = set(rooms)
        with self._lock:
            if wanted == self._rooms_wanted:
                return
            self._rooms_wanted = wanted
        self._rooms_changed.set()

    def wait_room(self, room: str, timeout: float) -> bool:
        """Wait (on a worker thread) until this worker hears the room's channel."""
        deadline = time.monotonic() + timeout
        with self._heard:
            while room not in self._rooms_heard:
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return False
                self._heard.wait(left)
            return True

    def _channel_of(
        self, event: Dict[str, Any], workers: Dict[str, Optional[str]]
    ) -> Optional[str]:
        kind = event.get("t")
        if kind in ("room", "head"):
            return self._room_prefix + str(event.get("room", ""))
        if kind in ("user", "act") and "to" in event:
            worker = workers.get(str(event["to"]))
            if worker is None or worker == self.worker:
                return None  # not online, or held here (delivered already)
            return self._worker_prefix + worker
        return self._control

    def _holders(self, batch: List[Dict[str, Any]]) -> Dict[str, Optional[str]]:
        """The live worker holding each user named by a `user`/`act` event (one HMGET)."""
        wanted = sorted(
            {str(e["to"]) for e in batch if e.get("t") in ("user", "act") and "to" in e}
        )
        if not wanted:
            return {}
        raw = self.client.hmget(self._names_key, wanted)
        owners = {
            k: (_text(v).split("\t", 1)[0] if v is not None else None) for k, v in zip(wanted, raw)
        }
        alive = self._alive({w for w in owners.values() if w is not None})
        return {
            k: (w if w is not None and alive.get(w, False) else None) for k, w in owners.items()
        }

    def publish(self, event: Dict[str, Any], on_lost: Optional[OnLost] = None) -> None:
        """Send `event` to the workers it concerns (queued; see publish_many)."""
        self.publish_many([event], on_lost)

    def publish_many(
        self, batch: List[Dict[str, Any]], on_lost: Optional[OnLost] = None, wake: bool = True
    ) -> None:
        """Queue events to be sent in order, each on its channel. They are sent by the
        publisher thread, or (wake=False) by the caller's own next send_queued(): a
        storage thread queues what each job publishes and sends it all when it runs out
        of jobs. Never waits on Redis. If they cannot be sent or are not confirmed (Redis
        down, or too many waiting), they are counted for the recovery log and
        `on_lost(batch)` is called (on whichever thread found out)."""
        if not batch:
            return
        refused = False
        with self._outgoing_ready:
            if self._outgoing_count + len(batch) > PUBLISH_QUEUE_LIMIT or self._stop.is_set():
                refused = True
            else:
                self._outgoing.append((batch, on_lost))
                self._outgoing_count += len(batch)
                if wake:
                    self._outgoing_ready.notify_all()
        if refused:
            self._lost(batch, on_lost)

    def send_queued(self) -> None:
        """Send everything queued so far (on the calling thread; never waits for replies,
        waits for socket room at most the call timeout)."""
        if not self._outgoing and not self._publisher.unconfirmed:
            return
        with self._send_lock:
            while True:
                with self._outgoing_ready:
                    taken: List[Sent] = []
                    count = 0
                    while self._outgoing and count < PUBLISH_BATCH_LIMIT:
                        entry = self._outgoing.popleft()
                        taken.append(entry)
                        count += len(entry[0])
                    self._outgoing_count -= count
                    self._publishing = bool(taken)
                try:
                    if taken:
                        self._send(taken)
                    else:
                        self._confirm()
                except Exception:  # a bug: log it; the events are lost as if Redis were down
                    log.exception("cluster: publishing failed")
                    self._lose_pipelines([taken, *self._publisher.close()])
                with self._outgoing_ready:
                    self._publishing = False
                    more = bool(self._outgoing)
                    self._outgoing_ready.notify_all()
                if not taken or not more:
                    return

    def flush(self, timeout: float) -> bool:
        """Wait (bounded) until everything queued so far has been confirmed by Redis or
        given up."""
        deadline = time.monotonic() + timeout
        while True:
            self.send_queued()
            with self._outgoing_ready:
                if not self._outgoing and not self._publishing and not self._publisher.unconfirmed:
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or not any(t.is_alive() for t in self._threads):
                    return False
                self._outgoing_ready.wait(min(left, 0.01))

    def _lost(self, batch: List[Dict[str, Any]], on_lost: Optional[OnLost]) -> None:
        with self._lock:
            self._lost_publishes += len(batch)
        if self.metrics is not None:
            self.metrics.counters().bus_publish_lost += len(batch)
        if on_lost is not None:
            try:
                on_lost(batch)
            except Exception:
                log.exception("cluster: handling lost publishes failed")

    def _publish(self) -> None:
        """The publisher thread: send what others queue (wake=True), and read Redis's
        replies while any are due, so a failure is noticed without a next publish."""
        while True:
            with self._outgoing_ready:
                if not self._outgoing and not self._stop.is_set():
                    due = self._publisher.unconfirmed
                    self._outgoing_ready.wait(CONFIRM_POLL_SECONDS if due else STRAY_POLL_SECONDS)
                if self._stop.is_set() and not self._outgoing:
                    return  # stopping, and nothing is left
            self.send_queued()

    def _confirm(self) -> None:
        """Read the replies Redis has sent (caller holds the send lock)."""
        try:
            confirmed = self._publisher.confirm()
        except PublishFailed as failed:
            self._publish_failed(failed)
            return
        self._observe(confirmed)

    def _send(self, taken: List[Sent]) -> None:
        """One pipeline of PUBLISH commands on the publisher's own connection (caller
        holds the send lock)."""
        events_taken = [e for batch, _ in taken for e in batch]
        try:
            commands = self.call(functools.partial(self._commands, events_taken))
            if not commands:
                return
            confirmed = self.call(functools.partial(self._publisher.send, commands, taken))
        except ClusterUnavailable:
            self._lose_pipelines([taken])
            return
        except PublishFailed as failed:
            self._publish_failed(failed)
            return
        self._observe(confirmed)

    def _publish_failed(self, failed: PublishFailed) -> None:
        self._failed(failed)
        self._lose_pipelines(failed.lost)

    def _lose_pipelines(self, pipelines: Iterable[List[Sent]]) -> None:
        """Every queued batch of these pipelines (taken or sent, never confirmed) is lost."""
        for pipeline in pipelines:
            for batch, on_lost in pipeline:
                self._lost(batch, on_lost)

    def _observe(self, confirmed: List[Tuple[List[Sent], float]]) -> None:
        if confirmed and self.metrics is not None:
            histogram = self.metrics.counters().bus_publish
            for _, seconds in confirmed:
                histogram.observe(seconds)

    def _commands(self, batch: List[Dict[str, Any]]) -> List[Command]:
        """The PUBLISH commands for `batch`: consecutive events for one channel as one."""
        holders = self._holders(batch)
        runs: List[Tuple[str, List[Dict[str, Any]]]] = []  # consecutive events per channel
        for event in batch:
            channel = self._channel_of(event, holders)
            if channel is None:
                continue
            # The worker goes first on the wire (the prefix); a caller's own "w" is dropped.
            body = event if "w" not in event else {k: v for k, v in event.items() if k != "w"}
            if runs and runs[-1][0] == channel:
                runs[-1][1].append(body)
            else:
                runs.append((channel, [body]))
        prefix = self._own_prefix
        commands: List[Command] = []
        for channel, bodies in runs:  # a run of several goes as one batch event
            if len(bodies) == 1:
                data = prefix + events.dumps(bodies[0])[1:]
            else:
                data = prefix + '"t":"batch","e":' + events.dumps(bodies) + "}"
            commands.append(("PUBLISH", channel, data))
        return commands

    def _heartbeat(self) -> None:
        key = self._alive_prefix + self.worker
        while not self._stop.wait(HEARTBEAT_EVERY):
            try:
                self.call(lambda: self.client.set(key, "1", ex=HEARTBEAT_TTL))
            except ClusterUnavailable:
                continue

    def _subscribe(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            # Any: redis-py's typing of PubSub changes between releases (8.1: pubsub()
            # untyped; 8.2: unsubscribe() untyped); this file must check against both.
            client: Any = self.client
            pubsub: Any = client.pubsub()
            with self._heard:
                self._rooms_heard.clear()
            try:
                pubsub.subscribe(self._control, self._own_channel)
                subscribed: Set[str] = set()
                self._rooms_changed.set()
                backoff = 0.2
                while not self._stop.is_set():
                    if self._rooms_changed.is_set():
                        self._rooms_changed.clear()
                        with self._lock:
                            wanted = set(self._rooms_wanted)
                        added, gone = wanted - subscribed, subscribed - wanted
                        if added:
                            pubsub.subscribe(*(self._room_prefix + r for r in sorted(added)))
                        if gone:
                            pubsub.unsubscribe(*(self._room_prefix + r for r in sorted(gone)))
                        subscribed = wanted
                    message = pubsub.get_message(timeout=BUS_POLL_SECONDS)
                    if message is not None:
                        self._received(message)
            except self._redis_module.RedisError as exc:
                self._failed(exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:  # a bug: log it, and hear the bus again (a catch-up follows)
                log.exception("cluster: the bus subscription failed; reconnecting")
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                try:
                    pubsub.close()
                except Exception:
                    pass

    def _received(self, message: Dict[str, Any]) -> None:
        kind = message.get("type")
        if kind in ("subscribe", "unsubscribe"):
            channel = _text(message.get("channel", ""))
            if not channel.startswith(self._room_prefix):
                return
            room = channel[len(self._room_prefix) :]
            with self._heard:
                if kind == "subscribe":
                    self._rooms_heard.add(room)
                else:
                    self._rooms_heard.discard(room)
                self._heard.notify_all()
            if kind == "subscribe" and self.on_room_subscribed is not None:
                try:
                    self.on_room_subscribed(room)
                except Exception:
                    log.exception("cluster: catching a room up failed")
            return
        if kind != "message":
            return
        data = message["data"]
        if isinstance(data, bytes) and data.startswith(self._own_marker):
            return  # this worker's own event, heard on a room channel it follows
        try:
            event = events.loads(data)
        except ValueError:
            log.warning("cluster: unreadable bus event ignored")
            return
        worker = event.get("w")
        if worker == self.worker or self._handler is None:
            return
        if event.get("t") != "batch":
            self._handle(event)
            return
        items = event.get("e")
        if not isinstance(items, list):
            log.warning("cluster: unreadable bus batch ignored")
            return
        for item in items:
            if isinstance(item, dict):
                item["w"] = worker
                self._handle(item)

    def _handle(self, event: Dict[str, Any]) -> None:
        assert self._handler is not None
        try:
            self._handler(event)
        except Exception:
            log.exception("cluster: handling a bus event failed")


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
