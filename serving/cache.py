"""Recommendation lists cached in two tiers with one TTL: an in-process LRU in front of
Redis, which the replicas share.

Keys name everything an answer depends on (model version, rules version, user, k, session,
exclude, category), so a cached list is never stale within its TTL and both tiers can hold
it. A hit in the local tier costs no Redis round trip; writes to Redis leave the request
path: a background thread sends them in pipelines. Both are bounded: the local tier by
`local_entries` (least recently used out first), the writes waiting for Redis by
`pending_writes` (a write that finds the queue full is dropped and counted; the next miss
of that key recomputes it). A failing Redis degrades to the local tier (counted).
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from recsys.core.online.fail_fast_redis import CircuitOpen
from recsys.core.online.redis_keys import RedisKeys
from recsys.core.settings import DEFAULT_EVENT_STREAM

if TYPE_CHECKING:
    import redis

    from recsys.serving.collaborators import ListAnswer

log = logging.getLogger(__name__)
WRITE_BATCH = 256
"""Most SETs sent in one pipeline."""


class RecommendationCache:
    """Lists under `RedisKeys(namespace).recommendations(...)`, with a TTL."""

    def __init__(self, client: redis.Redis | None, ttl_seconds: int,
                 namespace: str = DEFAULT_EVENT_STREAM, local_entries: int = 10_000,
                 pending_writes: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`client`: the shared tier (None: the local tier only)."""
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.keys = RedisKeys(namespace)
        self.local_entries = local_entries
        self.clock = clock
        self.errors = 0
        """Redis reads and write batches that failed."""
        self.dropped_writes = 0
        """Writes not sent to Redis because `pending_writes` were already waiting."""
        self._local: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()
        self._writes: queue.Queue[tuple[str, str]] = queue.Queue(maxsize=pending_writes)
        self._writer: threading.Thread | None = None

    def key(self, model_version: str, user_id: str, k: int, session_key: str,
            exclude: tuple[str, ...], category: str | None) -> str:
        return self.keys.recommendations(model_version, user_id, k, session_key, exclude,
                                         category)

    def get(self, key: str) -> ListAnswer | None:
        if self.ttl_seconds == 0:
            return None
        raw = self._local_get(key)
        if raw is not None:
            return _answer(raw)
        if self.client is None:
            return None
        try:  # redis-py types a sync answer `Awaitable | Any` (redis/redis-py#2399)
            stored = cast("bytes | str | None", self.client.get(key))
        except CircuitOpen:  # Redis is being skipped (the breaker logged why)
            return None
        except Exception as exc:
            self._failed("get", exc)
            return None
        if not stored:
            return None
        raw = stored.decode() if isinstance(stored, bytes) else stored
        self._local_put(key, raw)  # the rest of its TTL would be exact; the full one is close
        return _answer(raw)

    def set(self, key: str, value: ListAnswer) -> None:
        if self.ttl_seconds == 0:
            return
        raw = json.dumps(value)
        self._local_put(key, raw)
        if self.client is None:
            return
        self._start_writer(self.client)
        try:
            self._writes.put_nowait((key, raw))
        except queue.Full:
            with self._lock:
                self.dropped_writes += 1

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued write reached Redis (or failed); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._writes.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float = 1.0) -> None:
        """Send what is queued for Redis, waiting at most `timeout` seconds (a list that
        does not get there is only recomputed by its next miss)."""
        self.flush(timeout)

    # ---- local tier --------------------------------------------------------------------
    def _local_get(self, key: str) -> str | None:
        if self.local_entries == 0:
            return None
        with self._lock:
            found = self._local.get(key)
            if found is None:
                return None
            expires, raw = found
            if self.clock() >= expires:
                del self._local[key]
                return None
            self._local.move_to_end(key)
            return raw

    def _local_put(self, key: str, raw: str) -> None:
        if self.local_entries == 0:
            return
        with self._lock:
            self._local[key] = (self.clock() + self.ttl_seconds, raw)
            self._local.move_to_end(key)
            while len(self._local) > self.local_entries:
                self._local.popitem(last=False)

    # ---- writes to Redis ----------------------------------------------------------------
    def _start_writer(self, client: redis.Redis) -> None:
        if self._writer is not None:
            return
        with self._lock:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, args=(client,),
                                                name="cache-writer", daemon=True)
                self._writer.start()

    def _write_loop(self, client: redis.Redis) -> None:
        while True:
            batch = [self._writes.get()]
            while len(batch) < WRITE_BATCH:
                try:
                    batch.append(self._writes.get_nowait())
                except queue.Empty:
                    break
            try:
                pipe = client.pipeline(transaction=False)
                for key, raw in batch:
                    pipe.set(key, raw, ex=self.ttl_seconds)
                pipe.execute()
            except CircuitOpen:  # Redis is being skipped: these lists stay local
                with self._lock:
                    self.errors += 1
            except Exception as exc:
                self._failed(f"set of {len(batch)}", exc)
            finally:
                for _ in batch:
                    self._writes.task_done()

    def _failed(self, what: str, exc: Exception) -> None:
        with self._lock:
            self.errors += 1
        log.warning("cache %s failed, serving without the shared cache: %s", what, exc)


def _answer(raw: str) -> ListAnswer:
    """A cached list: what `set` stored, so no check (the key names its model version)."""
    answer: ListAnswer = json.loads(raw)
    return answer
