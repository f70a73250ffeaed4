"""Redis clients on a request's path fail fast: one attempt, every wait bounded.

redis-py 7 retries a command that could not connect or timed out three times with
exponential backoff (1 s base, 10 s cap), and Feast builds its online-store client with no
socket timeout at all. With the online store down, one recommendation request waited 9.3 s
(measured) before the serving fallback answered; a stalled Redis would hold it for good.
Where a request waits on Redis (the recommendation cache, the live session features), a
failure costs at most one timeout and the caller degrades (counted). Background workers
(stream processor, sink) keep redis-py's retries: for them waiting is right.

A Redis that hangs (a stopped process, a full network buffer) still costs every request
its timeout, and requests run one at a time on the server's event loop: 16 clients got 22
requests/s instead of 600-800 (measured with SIGSTOP on the cache Redis). So each client
on the request path also goes through a `CircuitBreaker`: after `failures_to_open`
consecutive timeouts or connection errors it opens and commands fail at once
(`CircuitOpen`, a `redis.ConnectionError`: callers degrade as for any Redis failure) for
`cool_down_seconds`; then one trial command goes through (half-open): its success closes
the breaker, its failure opens it for another cool-down.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)
"""What counts as a failure: Redis did not answer (an error reply is an answer)."""


class CircuitOpen(redis.ConnectionError):
    """The breaker is open: the command was not sent."""


class CircuitBreaker:
    """Closed -> open after `failures_to_open` consecutive failures; open -> half-open after
    `cool_down_seconds`, letting one trial call through; that trial closes it again or
    reopens it. `on_change(state)` hears every change (metrics); `clock` is injectable."""

    def __init__(self, name: str, failures_to_open: int = 3, cool_down_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[str], None] | None = None):
        self.name = name
        self.failures_to_open = failures_to_open
        self.cool_down_seconds = cool_down_seconds
        self.clock = clock
        self.on_change = on_change
        self.state = CLOSED
        self.opens = 0
        """How many times it opened."""
        self._failures = 0
        self._opened_at = 0.0
        self._lock = threading.Lock()

    def allow(self) -> bool:
        """True when a call may go to Redis now (in half-open: only the one trial)."""
        with self._lock:
            if self.state == CLOSED:
                return True
            if self.state == OPEN and self.clock() - self._opened_at >= self.cool_down_seconds:
                self._set(HALF_OPEN)
                return True  # the trial; others are refused until it ends
            return False

    def succeeded(self) -> None:
        with self._lock:
            self._failures = 0
            if self.state != CLOSED:
                log.warning("%s answers again: circuit closed", self.name)
                self._set(CLOSED)

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            if self.state == HALF_OPEN or (self.state == CLOSED and
                                           self._failures >= self.failures_to_open):
                self.opens += 1
                self._opened_at = self.clock()
                log.warning("%s unreachable (%d failures): circuit open, skipping it for "
                            "%.1f s", self.name, self._failures, self.cool_down_seconds)
                self._set(OPEN)

    def call(self, command: Callable, *args, **kwargs):
        """`command(*args, **kwargs)` through the breaker; CircuitOpen when it is open."""
        if not self.allow():
            raise CircuitOpen(f"{self.name}: circuit open after repeated failures")
        try:
            result = command(*args, **kwargs)
        except UNREACHABLE:
            self.failed()
            raise
        except Exception:
            self.succeeded()  # Redis answered, with an error
            raise
        self.succeeded()
        return result

    def _set(self, state: str) -> None:
        self.state = state
        if self.on_change is not None:
            self.on_change(state)


def one_attempt() -> Retry:
    return Retry(NoBackoff(), 0)


def fail_fast_client(url: str, timeout_seconds: float,
                     breaker: CircuitBreaker | None = None) -> redis.Redis:
    """A client for `url` whose commands try once and wait at most `timeout_seconds` to
    connect and for each reply (and go through `breaker` when given)."""
    client = redis.Redis.from_url(url, socket_timeout=timeout_seconds,
                                  socket_connect_timeout=timeout_seconds, retry=one_attempt())
    return client if breaker is None else guarded(client, breaker)


def make_fail_fast(client: redis.Redis, timeout_seconds: float,
                   breaker: CircuitBreaker | None = None) -> None:
    """The same for a client another library built (Feast's online-store client): its
    open connections are closed, so every connection from now on has these settings."""
    client.set_retry(one_attempt())
    pool = client.connection_pool
    pool.connection_kwargs.update(socket_timeout=timeout_seconds,
                                  socket_connect_timeout=timeout_seconds)
    pool.disconnect()
    if breaker is not None:
        guarded(client, breaker)


def guarded(client: redis.Redis, breaker: CircuitBreaker) -> redis.Redis:
    """Route `client`'s commands and its pipelines' executions through `breaker`. Set on
    the instance, so that a client another library built and holds is guarded too (every
    redis-py command method calls `self.execute_command`)."""
    command, pipeline = client.execute_command, client.pipeline

    def guarded_pipeline(*args, **kwargs):
        pipe = pipeline(*args, **kwargs)
        execute = pipe.execute
        pipe.execute = lambda *a, **kw: breaker.call(execute, *a, **kw)
        return pipe

    # entries of the instance's own dict shadow the class's methods, for this client only
    vars(client).update(
        execute_command=lambda *args, **options: breaker.call(command, *args, **options),
        pipeline=guarded_pipeline)
    return client
