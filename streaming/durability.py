"""Whether the bus's Redis keeps what it acknowledged.

The collector answers 202 only for events that survive a Redis crash. At start it reads the
server's persistence settings and refuses a volatile server (one that keeps the stream
only in memory, fsyncs lazily, or evicts keys when full) unless told that losing
acknowledged events is acceptable (`--allow-volatile-bus`, for tests and throwaway demos).
The shipped configuration is `infra/redis/bus.conf`.

A server can turn volatile under a running collector (`CONFIG SET appendfsync no`, or a
restart from another configuration), so `DurabilityGuard` checks again: on every new
connection, before it carries a command (a restarted server is a new connection), and
every `check_seconds` before a write. While a check fails the collector answers 503 and
`/health` says why.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

from recsys.core.errors import ConfigError

log = logging.getLogger(__name__)

REQUIRED = {"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction",
            "no-appendfsync-on-rewrite": "no"}
"""Redis settings under which an acknowledged XADD is on disk and never evicted (with
`no-appendfsync-on-rewrite yes` writes made during an AOF rewrite are not fsynced)."""


def problems_in(values: dict[str, str]) -> list[str]:
    """What in these server settings loses acknowledged writes (empty when none)."""
    return [f"{name} is {values.get(name)!r}, needs {wanted!r}"
            for name, wanted in REQUIRED.items() if values.get(name) != wanted]


def _pairs(reply) -> dict[str, str]:
    """A CONFIG GET reply (a flat list of name, value or a dict) as a str dict."""
    if isinstance(reply, dict):
        items = list(reply.items())
    else:
        items = list(zip(reply[::2], reply[1::2]))
    return {_text(k): _text(v) for k, v in items}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def persistence_problems(client: redis.Redis) -> list[str]:
    """What makes this server lose acknowledged writes (empty when none)."""
    try:
        return problems_in(_pairs(client.execute_command("CONFIG", "GET", *REQUIRED)))
    except redis.ResponseError as exc:
        return [f"cannot read the server's settings (CONFIG GET: {exc})"]


def require_durable(client: redis.Redis, allow_volatile: bool = False) -> list[str]:
    """Raise ConfigError when the server would lose acknowledged events, unless
    `allow_volatile`; returns the problems found (logged as a warning when allowed)."""
    problems = persistence_problems(client)
    if not problems:
        return []
    message = ("the event bus's Redis would lose acknowledged events: " + "; ".join(problems)
               + " (start it from infra/redis/bus.conf, or pass --allow-volatile-bus)")
    if not allow_volatile:
        raise ConfigError(message)
    log.warning("%s - running anyway (--allow-volatile-bus)", message)
    return problems


class NotDurable(redis.ConnectionError):
    """A new connection reached a server that would lose acknowledged writes: it is closed
    before it carries a command."""


class DurabilityGuard:
    """The last verdict on the bus server's persistence, checked every `check_seconds` and on
    every new connection (`connection_check`); `problems` is what the last check found."""

    def __init__(self, check_seconds: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        self.check_seconds = check_seconds
        self.clock = clock
        self.problems: list[str] = []
        self._checked_at: float | None = None
        self._lock = threading.Lock()

    def record(self, problems: list[str]) -> list[str]:
        with self._lock:
            if problems != self.problems:
                if problems:
                    log.error("event bus not durable, refusing events: %s", "; ".join(problems))
                else:
                    log.warning("event bus durable again: accepting events")
            self.problems, self._checked_at = problems, self.clock()
        return problems

    def due(self) -> bool:
        """A good verdict holds for `check_seconds`; a bad one is checked again every time
        (the server is refused meanwhile, so the check is all it is asked)."""
        return self._checked_at is None or bool(self.problems) or \
            self.clock() - self._checked_at >= self.check_seconds

    def check(self, client: redis.Redis) -> list[str]:
        """Problems now, read from the server when the last check is older than the period
        (raises the client's error when the server cannot be asked)."""
        if not self.due():
            return self.problems
        return self.record(persistence_problems(client))

    def connection_check(self, connection: redis.connection.AbstractConnection) -> None:
        """Run on a new connection after its handshake: raise NotDurable when the server it
        reached would lose acknowledged writes."""
        connection.send_command("CONFIG", "GET", *REQUIRED)
        problems = self.record(problems_in(_pairs(connection.read_response())))
        if problems:
            raise NotDurable("the event bus's Redis would lose acknowledged events: "
                             + "; ".join(problems))
