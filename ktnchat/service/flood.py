# Flood control: token buckets per session, a mute for sustained flooding, and a limiter
# for failed password / admin-secret attempts per key (e.g. a peer address).
# Rules: no clock of its own (every call is given `now`, in seconds, from a monotonic
# clock); time that runs backwards refills nothing; memory is O(1) per guard and bounded
# per limiter (strike and failure times sit in deques capped at their threshold, keys are
# capped with the oldest evicted). A FloodGuard belongs to one session and is not locked
# (its session's requests are handled one at a time); the shared AttemptLimiter is.
from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Deque

_EPSILON = 1e-9  # float slack, so 0.2 s at 5/s refills a whole token


@dataclass(frozen=True)
class FloodConfig:
    enabled: bool = True
    request_rate: float = 20.0  # requests per second, sustained
    request_burst: float = 40.0
    message_rate: float = 5.0  # msg/sendto per second, sustained
    message_burst: float = 10.0
    strikes_to_mute: int = 5  # refusals within strike_window seconds: sustained flooding
    strike_window: float = 10.0  # (strikes_to_mute = 0: never mute)
    mute_seconds: float = 60.0  # how long sustained flooding silences the user

    def __post_init__(self) -> None:
        for name in ("request_rate", "message_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"FloodConfig.{name} must be > 0")
        for name in ("request_burst", "message_burst"):
            if not getattr(self, name) >= 1:
                raise ValueError(f"FloodConfig.{name} must be >= 1")
        for name in ("strikes_to_mute", "strike_window", "mute_seconds"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"FloodConfig.{name} must be >= 0")


@dataclass(frozen=True)
class Verdict:
    """The answer to one check: allowed, or refused with how long to wait.

    `retry_after` is 0.0 when allowed; on a refusal it is the seconds until the request
    would pass (the remaining mute time while muted, `mute_seconds` when `mute_started`)."""

    allowed: bool
    retry_after: float = 0.0
    mute_started: bool = False


ALLOWED = Verdict(True)


class TokenBucket:
    """Classic token bucket: starts full, refills continuously at `rate` up to `burst`."""

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate < 0 or burst < 0:
            raise ValueError("TokenBucket rate and burst must be >= 0")
        self.rate = float(rate)
        self.burst = float(burst)
        self._tokens = self.burst
        self._last = now

    def _refill(self, now: float) -> None:
        if now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now

    def tokens(self, now: float) -> float:
        """The tokens available at `now`."""
        self._refill(now)
        return self._tokens

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend `cost` tokens and return True if they are there; else spend none."""
        self._refill(now)
        if self._tokens + _EPSILON >= cost:
            self._tokens = max(0.0, self._tokens - cost)
            return True
        return False

    def wait_time(self, now: float, cost: float = 1.0) -> float:
        """Seconds until `cost` tokens are there (0.0 if now; inf if never)."""
        self._refill(now)
        missing = cost - self._tokens
        if missing <= _EPSILON:
            return 0.0
        if cost > self.burst + _EPSILON or self.rate <= 0:
            return math.inf
        return missing / self.rate


class FloodGuard:
    """Request and message rate limits for one session, with a mute for repeat floods.

    Every refusal (by either check) while not muted is a strike; the refusal that makes
    `strikes_to_mute` strikes within `strike_window` seconds starts a mute of
    `mute_seconds` (its verdict has `mute_started`) and clears the strikes. A mute
    silences messages only: check_message refuses until it ends, check_request goes on
    as before, and refusals during a mute add no strikes (a mute is never extended)."""

    __slots__ = ("_messages", "_requests", "_strikes", "config", "muted_until")

    def __init__(self, config: FloodConfig, now: float) -> None:
        self.config = config
        self._requests = TokenBucket(config.request_rate, config.request_burst, now)
        self._messages = TokenBucket(config.message_rate, config.message_burst, now)
        self._strikes: Deque[float] = deque(maxlen=max(1, config.strikes_to_mute))
        self.muted_until = 0.0  # end of the current mute; 0.0 when not muted

    def muted(self, now: float) -> bool:
        """True while a mute lasts; resets muted_until to 0.0 once it has ended."""
        if self.muted_until and now >= self.muted_until:
            self.muted_until = 0.0
        return self.muted_until > 0.0

    def lift_mute(self) -> None:
        """End a flood mute now (a moderator's `unmute`); strikes start from zero."""
        self.muted_until = 0.0
        self._strikes.clear()

    def check_request(self, now: float) -> Verdict:
        """Every request, before anything else."""
        if not self.config.enabled:
            return ALLOWED
        if self._requests.take(now):
            return ALLOWED
        return self._refuse(now, self._requests.wait_time(now))

    def check_message(self, now: float) -> Verdict:
        """msg and sendto, after check_request has allowed them."""
        if not self.config.enabled:
            return ALLOWED
        if self.muted(now):
            return Verdict(False, self.muted_until - now)
        if self._messages.take(now):
            return ALLOWED
        return self._refuse(now, self._messages.wait_time(now))

    def _refuse(self, now: float, retry_after: float) -> Verdict:
        config = self.config
        if config.strikes_to_mute <= 0 or self.muted(now):
            return Verdict(False, retry_after)
        strikes = self._strikes
        strikes.append(now)
        while strikes and now - strikes[0] >= config.strike_window:
            strikes.popleft()
        if len(strikes) < config.strikes_to_mute:
            return Verdict(False, retry_after)
        strikes.clear()
        if config.mute_seconds <= 0:
            return Verdict(False, retry_after)
        self.muted_until = now + config.mute_seconds
        return Verdict(False, config.mute_seconds, mute_started=True)


class AttemptLimiter:
    """At most `max_failures` failures per `window` seconds per key (e.g. a peer address).

    Holds at most `max_keys` keys; beyond that the key with the oldest latest failure is
    forgotten. Thread-safe."""

    def __init__(self, max_failures: int = 5, window: float = 60.0, max_keys: int = 10_000):
        if max_failures < 1 or window <= 0 or max_keys < 1:
            raise ValueError("AttemptLimiter needs max_failures >= 1, window > 0, max_keys >= 1")
        self.max_failures = max_failures
        self.window = float(window)
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, Deque[float]] = OrderedDict()

    def __len__(self) -> int:
        with self._lock:
            return len(self._failures)

    def _recent(self, key: str, now: float) -> int:
        """Drop `key`'s failures older than the window; how many are left (lock held)."""
        times = self._failures.get(key)
        if times is None:
            return 0
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0
        return len(times)

    def allow(self, key: str, now: float) -> bool:
        """May `key` make another attempt now?"""
        with self._lock:
            return self._recent(key, now) < self.max_failures

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until `key` may try again (0.0 if now)."""
        with self._lock:
            if self._recent(key, now) < self.max_failures:
                return 0.0
            return max(0.0, self._failures[key][0] + self.window - now)

    def record_failure(self, key: str, now: float) -> None:
        with self._lock:
            times = self._failures.get(key)
            if times is None:
                times = self._failures[key] = deque(maxlen=self.max_failures)
            else:
                self._failures.move_to_end(key)
            times.append(now)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def forget(self, key: str) -> None:
        """Drop `key`'s failures (e.g. after an administrator clears a lockout)."""
        with self._lock:
            self._failures.pop(key, None)
