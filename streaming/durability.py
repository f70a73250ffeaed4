"""Whether the bus's Redis keeps what it acknowledged.

The collector answers 202 only for events that survive a Redis crash, so at start it reads
the server's persistence settings and refuses a volatile server (one that keeps the stream
only in memory, fsyncs lazily, or evicts keys when full) unless told that losing
acknowledged events is acceptable (`--allow-volatile-bus`, for tests and throwaway demos).
The shipped configuration is `infra/redis/bus.conf`.
"""
from __future__ import annotations

import logging

import redis

from recsys.core.errors import ConfigError

log = logging.getLogger(__name__)

REQUIRED = {"appendonly": "yes", "appendfsync": "always", "maxmemory-policy": "noeviction"}
"""Redis settings under which an acknowledged XADD is on disk and never evicted."""


def persistence_problems(client: redis.Redis) -> list[str]:
    """What makes this server lose acknowledged writes (empty when none)."""
    problems = []
    for name, wanted in REQUIRED.items():
        try:
            value = client.config_get(name).get(name)
        except redis.ResponseError as exc:
            return [f"cannot read the server's settings (CONFIG GET {name}: {exc})"]
        if value != wanted:
            problems.append(f"{name} is {value!r}, needs {wanted!r}")
    return problems


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
