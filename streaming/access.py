"""Who may write events, and how fast: the collector's write keys and rate limits.

- Write keys (`recsys.core.bearer_keys`): `Authorization: Bearer <key>`; the keys come from
  `RECSYS_COLLECTOR_WRITE_KEYS` (comma-separated) and/or the file named by
  `RECSYS_COLLECTOR_WRITE_KEYS_FILE`, rotated without a restart. With neither set, the
  embedded default creates `<state dir>/secrets/collector_write_key` on first start.
- Rate limits: a token bucket per write key and one per client address; over either, 429
  with `Retry-After`. The per-client buckets are bounded (least recently seen dropped).
"""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

KEY_FILE_NAME = "collector_write_key"


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
