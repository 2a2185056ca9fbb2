# Flood control with explicit `now` values: no sleeps, no real clock.
from __future__ import annotations

import math
from typing import Any, List

import pytest

from ktnchat.service.flood import (
    ALLOWED,
    AttemptLimiter,
    FloodConfig,
    FloodGuard,
    TokenBucket,
    Verdict,
)

T0 = 1000.0


def guard(**config: Any) -> FloodGuard:
    return FloodGuard(FloodConfig(**config), T0)


# --- TokenBucket -------------------------------------------------------------------------


def test_bucket_starts_full_and_refuses_after_burst() -> None:
    bucket = TokenBucket(rate=5.0, burst=3.0, now=T0)
    assert [bucket.take(T0) for _ in range(4)] == [True, True, True, False]
    assert bucket.wait_time(T0) == pytest.approx(0.2)


def test_bucket_refills_continuously_up_to_burst() -> None:
    bucket = TokenBucket(rate=2.0, burst=4.0, now=T0)
    for _ in range(4):
        assert bucket.take(T0)
    assert bucket.tokens(T0 + 0.25) == pytest.approx(0.5)
    assert not bucket.take(T0 + 0.25)
    assert bucket.take(T0 + 0.5)  # exactly one token back (float slack tolerated)
    assert not bucket.take(T0 + 0.5)
    assert bucket.tokens(T0 + 100.0) == 4.0  # capped at burst


def test_bucket_refill_at_5_per_second_is_exact_enough() -> None:
    bucket = TokenBucket(rate=5.0, burst=1.0, now=0.0)
    now = 0.0
    for _ in range(50):
        assert bucket.take(now)
        assert not bucket.take(now)
        now += 0.2  # 0.2 * 5 may land a hair under 1.0 in floating point


def test_bucket_wait_time() -> None:
    bucket = TokenBucket(rate=4.0, burst=2.0, now=T0)
    assert bucket.wait_time(T0) == 0.0
    assert bucket.wait_time(T0, cost=2.0) == 0.0
    assert bucket.take(T0, cost=2.0)
    assert bucket.wait_time(T0) == pytest.approx(0.25)
    assert bucket.wait_time(T0, cost=2.0) == pytest.approx(0.5)
    assert bucket.wait_time(T0 + 0.1) == pytest.approx(0.15)
    assert bucket.wait_time(T0 + 0.25) == 0.0
    assert bucket.wait_time(T0, cost=3.0) == math.inf  # more than the bucket holds


def test_bucket_failed_take_spends_nothing() -> None:
    bucket = TokenBucket(rate=1.0, burst=2.0, now=T0)
    assert bucket.take(T0)
    assert not bucket.take(T0, cost=2.0)
    assert bucket.tokens(T0) == pytest.approx(1.0)


def test_bucket_ignores_time_running_backwards() -> None:
    bucket = TokenBucket(rate=1.0, burst=1.0, now=T0)
    assert bucket.take(T0)
    assert not bucket.take(T0 - 50.0)
    assert not bucket.take(T0 + 0.5)
    assert bucket.take(T0 + 1.0)


def test_bucket_with_zero_rate_never_refills() -> None:
    bucket = TokenBucket(rate=0.0, burst=1.0, now=T0)
    assert bucket.take(T0)
    assert not bucket.take(T0 + 1e6)
    assert bucket.wait_time(T0 + 1e6) == math.inf


def test_bucket_rejects_negative_parameters() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=-1.0, burst=1.0, now=T0)
    with pytest.raises(ValueError):
        TokenBucket(rate=1.0, burst=-1.0, now=T0)


# --- FloodGuard: rates -------------------------------------------------------------------


def test_requests_burst_then_refusal_with_retry_after_then_refill() -> None:
    flood = guard(request_rate=10.0, request_burst=5.0, strikes_to_mute=0)
    assert all(flood.check_request(T0) is ALLOWED for _ in range(5))
    verdict = flood.check_request(T0)
    assert not verdict.allowed and not verdict.mute_started
    assert verdict.retry_after == pytest.approx(0.1)
    assert flood.check_request(T0 + 0.05).retry_after == pytest.approx(0.05)
    assert flood.check_request(T0 + 0.1).allowed
    assert flood.check_request(T0 + 10.0).allowed


def test_messages_have_their_own_bucket() -> None:
    flood = guard(message_rate=5.0, message_burst=2.0, strikes_to_mute=0)
    assert flood.check_message(T0).allowed
    assert flood.check_message(T0).allowed
    refused = flood.check_message(T0)
    assert not refused.allowed and not refused.mute_started
    assert refused.retry_after == pytest.approx(0.2)
    assert flood.check_request(T0).allowed  # requests are unaffected
    assert flood.check_message(T0 + 0.2).allowed


def test_default_config_allows_a_burst_of_ten_messages() -> None:
    flood = guard()
    assert all(flood.check_message(T0).allowed for _ in range(10))
    assert not flood.check_message(T0).allowed


# --- FloodGuard: strikes and the mute ---------------------------------------------------


def flood_messages(flood: FloodGuard, now: float, count: int) -> List[Verdict]:
    return [flood.check_message(now) for _ in range(count)]


def test_strikes_start_exactly_one_mute() -> None:
    flood = guard(message_rate=1.0, message_burst=1.0, strikes_to_mute=3, mute_seconds=60.0)
    verdicts = flood_messages(flood, T0, 10)
    assert verdicts[0].allowed
    assert not any(v.allowed for v in verdicts[1:])
    assert [v.mute_started for v in verdicts] == [False, False, False, True] + [False] * 6
    assert verdicts[3].retry_after == 60.0
    assert flood.muted(T0) and flood.muted_until == T0 + 60.0
    # while muted: remaining time, no new mute, no strikes
    later = flood.check_message(T0 + 45.0)
    assert later == Verdict(False, 15.0, False)
    assert not any(v.mute_started for v in flood_messages(flood, T0 + 50.0, 20))
    assert flood.muted_until == T0 + 60.0  # never extended


def test_mute_expires() -> None:
    flood = guard(message_rate=1.0, message_burst=1.0, strikes_to_mute=2, mute_seconds=30.0)
    verdicts = flood_messages(flood, T0, 3)
    assert verdicts[2].mute_started
    assert flood.muted(T0 + 29.999)
    assert not flood.muted(T0 + 30.0)
    assert flood.muted_until == 0.0
    assert flood.check_message(T0 + 30.0).allowed


def test_strikes_reset_when_the_mute_starts() -> None:
    flood = guard(message_rate=1.0, message_burst=1.0, strikes_to_mute=2, mute_seconds=10.0)
    assert flood_messages(flood, T0, 3)[2].mute_started
    assert flood.check_message(T0 + 10.0).allowed  # the bucket refilled during the mute
    again = flood_messages(flood, T0 + 10.0, 2)
    assert [v.mute_started for v in again] == [False, True]  # two fresh strikes needed


def test_strikes_outside_the_window_do_not_count() -> None:
    flood = guard(message_rate=1.0, message_burst=1.0, strikes_to_mute=3, strike_window=10.0)
    now = T0
    for _ in range(20):  # one refusal every 6 s: never 3 within 10 s
        assert flood.check_message(now).allowed
        refused = flood.check_message(now)
        assert not refused.allowed and not refused.mute_started
        now += 6.0
    assert not flood.muted(now)


def test_strike_window_boundary() -> None:
    flood = guard(message_rate=0.01, message_burst=1.0, strikes_to_mute=2, strike_window=10.0)
    assert flood.check_message(T0).allowed
    assert not flood.check_message(T0).mute_started
    assert not flood.check_message(T0 + 10.0).mute_started  # exactly window apart: out
    assert flood.check_message(T0 + 19.9).mute_started


def test_request_refusals_count_as_strikes_but_mute_silences_messages_only() -> None:
    flood = guard(request_rate=1.0, request_burst=1.0, strikes_to_mute=2, mute_seconds=5.0)
    assert flood.check_request(T0).allowed
    assert not flood.check_request(T0).mute_started
    started = flood.check_request(T0)
    assert started == Verdict(False, 5.0, True)
    assert flood.muted(T0)
    assert not flood.check_message(T0 + 1.0).allowed
    assert flood.check_request(T0 + 1.0).allowed  # requests follow the bucket only


def test_strikes_memory_is_bounded() -> None:
    flood = guard(message_rate=1.0, message_burst=1.0, strikes_to_mute=4, strike_window=1.0)
    now = T0
    for _ in range(1000):
        flood.check_message(now)
        now += 0.5
    assert len(flood._strikes) <= 4


def test_zero_strikes_or_zero_mute_never_mutes() -> None:
    for config in ({"strikes_to_mute": 0}, {"mute_seconds": 0.0}):
        flood = guard(message_rate=1.0, message_burst=1.0, **config)
        verdicts = flood_messages(flood, T0, 50)
        assert not any(v.mute_started for v in verdicts)
        assert not flood.muted(T0)


def test_disabled_allows_everything() -> None:
    flood = guard(enabled=False, request_burst=1.0, message_burst=1.0, strikes_to_mute=1)
    for _ in range(1000):
        assert flood.check_request(T0) is ALLOWED
        assert flood.check_message(T0) is ALLOWED
    assert not flood.muted(T0) and flood.muted_until == 0.0


@pytest.mark.parametrize(
    "bad",
    [
        {"request_rate": 0.0},
        {"message_rate": -1.0},
        {"request_burst": 0.5},
        {"message_burst": 0.0},
        {"strikes_to_mute": -1},
        {"strike_window": -1.0},
        {"mute_seconds": -1.0},
    ],
)
def test_config_rejects_nonsense(bad: Any) -> None:
    with pytest.raises(ValueError):
        FloodConfig(**bad)


# --- AttemptLimiter ----------------------------------------------------------------------


def test_limiter_allows_five_failures_per_minute() -> None:
    limiter = AttemptLimiter()
    for i in range(5):
        assert limiter.allow("1.2.3.4", T0 + i)
        limiter.record_failure("1.2.3.4", T0 + i)
    assert not limiter.allow("1.2.3.4", T0 + 5)
    assert limiter.retry_after("1.2.3.4", T0 + 5) == pytest.approx(55.0)
    assert limiter.allow("5.6.7.8", T0 + 5)  # other keys are unaffected
    assert limiter.retry_after("5.6.7.8", T0 + 5) == 0.0
    assert not limiter.allow("1.2.3.4", T0 + 59.9)
    assert limiter.allow("1.2.3.4", T0 + 60.0)  # the first failure left the window
    limiter.record_failure("1.2.3.4", T0 + 60.0)
    assert not limiter.allow("1.2.3.4", T0 + 60.5)
    assert limiter.allow("1.2.3.4", T0 + 61.0)


def test_limiter_forgets_expired_keys_and_explicitly_forgotten_ones() -> None:
    limiter = AttemptLimiter(max_failures=2, window=10.0)
    limiter.record_failure("a", T0)
    limiter.record_failure("b", T0)
    limiter.record_failure("b", T0)
    assert len(limiter) == 2
    assert limiter.allow("a", T0 + 10.0)
    assert len(limiter) == 1
    limiter.forget("b")
    assert limiter.allow("b", T0) and len(limiter) == 0


def test_limiter_caps_keys_evicting_the_oldest() -> None:
    limiter = AttemptLimiter(max_failures=1, window=60.0, max_keys=100)
    limiter.record_failure("first", T0)
    limiter.record_failure("renewed", T0)
    for i in range(98):
        limiter.record_failure(f"k{i}", T0 + 1)
    limiter.record_failure("renewed", T0 + 2)  # now the most recent
    assert len(limiter) == 100
    limiter.record_failure("newcomer", T0 + 3)
    assert len(limiter) == 100
    assert limiter.allow("first", T0 + 3)  # evicted
    assert not limiter.allow("renewed", T0 + 3)
    assert not limiter.allow("newcomer", T0 + 3)
    for i in range(10_000):
        limiter.record_failure(f"x{i}", T0 + 4)
    assert len(limiter) == 100


def test_limiter_per_key_memory_is_bounded() -> None:
    limiter = AttemptLimiter(max_failures=5, window=60.0)
    for i in range(1000):
        limiter.record_failure("k", T0 + i * 0.01)
    assert len(limiter._failures["k"]) == 5
    assert not limiter.allow("k", T0 + 10)


def test_limiter_rejects_nonsense() -> None:
    for bad in ({"max_failures": 0}, {"window": 0.0}, {"max_keys": 0}):
        with pytest.raises(ValueError):
            AttemptLimiter(**bad)


def test_verdict_defaults() -> None:
    assert Verdict(True, 0.0, False) == ALLOWED
