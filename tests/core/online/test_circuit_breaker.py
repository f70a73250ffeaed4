"""The request path's Redis circuit breaker, on an injected clock (no waiting)."""
import pytest
import redis

from recsys.core.online.fail_fast_redis import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    CircuitBreaker,
    CircuitOpen,
)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Redis:
    """A command that times out (`down`) or answers, counting the calls that reached it."""

    def __init__(self):
        self.down, self.calls = True, 0

    def get(self, key):
        self.calls += 1
        if self.down:
            raise redis.TimeoutError("Timeout reading from socket")
        return b"value"


@pytest.fixture
def setup():
    clock, changes = Clock(), []
    breaker = CircuitBreaker("Redis (cache)", failures_to_open=3, cool_down_seconds=5.0,
                             clock=clock, on_change=changes.append)
    return breaker, clock, Redis(), changes


def test_it_opens_after_consecutive_failures_then_skips_redis(setup):
    breaker, clock, server, changes = setup
    for _ in range(3):
        with pytest.raises(redis.TimeoutError):
            breaker.call(server.get, "k")
    assert (breaker.state, breaker.opens, server.calls, changes) == (OPEN, 1, 3, [OPEN])
    for _ in range(10):  # open: nothing reaches Redis, every call fails at once
        with pytest.raises(CircuitOpen):
            breaker.call(server.get, "k")
    clock.now += 4.9
    with pytest.raises(CircuitOpen):
        breaker.call(server.get, "k")
    assert server.calls == 3 and isinstance(CircuitOpen("x"), redis.ConnectionError)


def test_a_failed_trial_reopens_it_and_a_successful_one_closes_it(setup):
    breaker, clock, server, changes = setup
    for _ in range(3):
        with pytest.raises(redis.TimeoutError):
            breaker.call(server.get, "k")
    clock.now += 5.0
    with pytest.raises(redis.TimeoutError):  # the half-open trial, still down
        breaker.call(server.get, "k")
    assert (breaker.state, breaker.opens, server.calls) == (OPEN, 2, 4)
    with pytest.raises(CircuitOpen):  # a new cool-down started with the failed trial
        breaker.call(server.get, "k")
    clock.now += 5.0
    server.down = False
    assert breaker.call(server.get, "k") == b"value"
    assert (breaker.state, breaker.opens, server.calls) == (CLOSED, 2, 5)
    assert changes == [OPEN, HALF_OPEN, OPEN, HALF_OPEN, CLOSED]
    assert [breaker.call(server.get, "k") for _ in range(3)] == [b"value"] * 3


def test_half_open_lets_exactly_one_trial_through(setup):
    breaker, clock, server, _ = setup
    for _ in range(3):
        breaker.failed()
    clock.now += 5.0
    assert breaker.allow() is True and breaker.state == HALF_OPEN
    assert breaker.allow() is False  # others wait for the trial's outcome
    breaker.succeeded()
    assert breaker.allow() is True and breaker.state == CLOSED


def test_an_answer_in_between_resets_the_count_and_an_error_reply_is_an_answer(setup):
    breaker, _, server, _ = setup

    def wrong_type(key):
        raise redis.ResponseError("WRONGTYPE")

    for _ in range(2):
        with pytest.raises(redis.TimeoutError):
            breaker.call(server.get, "k")
    with pytest.raises(redis.ResponseError):
        breaker.call(wrong_type, "k")
    for _ in range(2):
        with pytest.raises(redis.TimeoutError):
            breaker.call(server.get, "k")
    assert breaker.state == CLOSED and breaker.opens == 0
