"""Who may write events, and how fast: the collector's write keys and rate limits.

- Write keys (`recsys.core.online.bearer_keys`): `Authorization: Bearer <key>`; the keys come from
  `RECSYS_COLLECTOR_WRITE_KEYS` (comma-separated) and/or the file named by
  `RECSYS_COLLECTOR_WRITE_KEYS_FILE`, rotated without a restart. With neither set, the
  embedded default creates `<state dir>/secrets/collector_write_key` on first start. The
  beacon path takes the same write keys from its URL (`?key=`, `key_in_url`): a write key
  is public (every visitor's page holds it) and only ever writes events; the collector
  knows no other token (serving's and the metrics tokens are other key sets).
- Rate limits count events, not requests: a token bucket per write key and a smaller one
  per client address, and a request takes one token per event it carries from both (or
  from neither). A batch larger than what is left gets 429 with `Retry-After`, nothing of it
  stored, so the client sends the same batch (same event ids) again; a batch larger than a
  whole burst can never fit and gets 413. The per-client budget is well below the key's, so
  one client cannot use up the budget of every shopper of the shop. The client address is
  the connection's peer, or the `X-Forwarded-For` entry a trusted proxy added (uvicorn's
  `proxy_headers`, trusted peers from `RECSYS_COLLECTOR_FORWARDED_ALLOW_IPS`). The
  per-client buckets are bounded (least recently seen dropped).
"""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from recsys.core.online.bearer_keys import BearerKeys

KEY_FILE_NAME = "collector_write_key"


def key_in_url(write_keys: BearerKeys, offered: str | None) -> str | None:
    """The write key a beacon URL's `key` names when it is one of `write_keys`, else None
    (compared as `write_keys.matching` compares a header: every key, in constant time)."""
    if not offered:
        return None
    return write_keys.matching(f"Bearer {offered}")


def foreign_origin(origin: str | None, allowed_origins: tuple[str, ...]) -> bool:
    """True when a browser's `Origin` is not one of the shop's (`*` allows every origin, as
    it does for CORS). Without the header (a server or a tool posting) there is nothing to
    check: the write key alone decides, as on `POST /events`."""
    return origin is not None and "*" not in allowed_origins and \
        origin not in allowed_origins


class RateLimiter:
    """Token buckets by name: `rate` per second, up to `burst` at once; at most `max_names`
    buckets (the least recently used is dropped, as if it were full)."""

    def __init__(self, rate: float, burst: float, max_names: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.max_names, self.clock = rate, burst, max_names, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, name: str, cost: float = 1.0) -> float:
        """0 when `cost` tokens were taken, else the seconds until they would be there."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(name, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= cost:
                tokens -= cost
            else:
                wait = (cost - tokens) / self.rate if self.rate > 0 else math.inf
            self._buckets[name] = (tokens, now)
            while len(self._buckets) > self.max_names:
                self._buckets.popitem(last=False)
        return wait

    def wait(self, name: str, cost: float = 1.0) -> float:
        """The seconds until `cost` tokens would be there (0: now), taking nothing."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(name, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= cost:
            return 0.0
        return (cost - tokens) / self.rate if self.rate > 0 else math.inf

    def give_back(self, name: str, cost: float) -> None:
        """Return `cost` tokens taken for a request that was refused after all."""
        with self._lock:
            if name in self._buckets:
                tokens, last = self._buckets[name]
                self._buckets[name] = (min(self.burst, tokens + cost), last)


class EventBudgets:
    """Events a second per write key and per client address: `take` takes one token per
    event from both buckets, or from neither."""

    def __init__(self, per_key: RateLimiter, per_client: RateLimiter):
        self.per_key, self.per_client = per_key, per_client

    @property
    def largest_batch(self) -> int:
        """The most events one request can ever carry (the smaller burst)."""
        return int(min(self.per_key.burst, self.per_client.burst))

    def wait(self, key: str, client: str) -> float:
        """The seconds until both buckets hold one token (0: now), taking nothing: refuses
        a client with an empty bucket before its body is read."""
        return max(self.per_key.wait(key), self.per_client.wait(client))

    def take(self, key: str, client: str, events: int) -> float:
        """0 when `events` tokens were taken from both buckets, else the seconds until
        they would be there (nothing taken); `math.inf` when more than `largest_batch`."""
        if events > self.largest_batch:
            return math.inf
        wait = self.per_key.take(key, events)
        if wait > 0:
            return max(wait, self.per_client.wait(client, events))
        wait = self.per_client.take(client, events)
        if wait > 0:
            self.per_key.give_back(key, events)
        return wait

    def give_back(self, key: str, client: str, events: int) -> None:
        """Return what `take` took for a request the bus could not store (503): its retry
        with the same events is not charged twice."""
        self.per_key.give_back(key, events)
        self.per_client.give_back(client, events)
