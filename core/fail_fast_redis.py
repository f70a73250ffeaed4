"""Redis clients on a request's path fail fast: one attempt, every wait bounded.

redis-py 7 retries a command that could not connect or timed out three times with
exponential backoff (1 s base, 10 s cap), and Feast builds its online-store client with no
socket timeout at all. With the online store down, one recommendation request waited 9.3 s
(measured) before the serving fallback answered; a stalled Redis would hold it for good.
Where a request waits on Redis (the recommendation cache, the live session features), a
failure costs at most one timeout and the caller degrades (counted). Background workers
(stream processor, sink) keep redis-py's retries: for them waiting is right.
"""
from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def one_attempt() -> Retry:
    return Retry(NoBackoff(), 0)


def fail_fast_client(url: str, timeout_seconds: float) -> redis.Redis:
    """A client for `url` whose commands try once and wait at most `timeout_seconds` to
    connect and for each reply."""
    return redis.Redis.from_url(url, socket_timeout=timeout_seconds,
                                socket_connect_timeout=timeout_seconds, retry=one_attempt())


def make_fail_fast(client: redis.Redis, timeout_seconds: float) -> None:
    """The same for a client another library built (Feast's online-store client): its
    open connections are closed, so every connection from now on has these settings."""
    client.set_retry(one_attempt())
    pool = client.connection_pool
    pool.connection_kwargs.update(socket_timeout=timeout_seconds,
                                  socket_connect_timeout=timeout_seconds)
    pool.disconnect()
