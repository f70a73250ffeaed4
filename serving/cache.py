"""Recommendation lists cached in Redis. A failing Redis degrades to no cache (counted)."""
from __future__ import annotations

import json
import logging

from recsys.core.redis_keys import RedisKeys
from recsys.core.settings import DEFAULT_EVENT_STREAM

log = logging.getLogger(__name__)


class RecommendationCache:
    """Lists under `RedisKeys(namespace).recommendations(...)`, with a TTL."""

    def __init__(self, client, ttl_seconds: int, namespace: str = DEFAULT_EVENT_STREAM):
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.keys = RedisKeys(namespace)
        self.errors = 0

    def key(self, model_version: str, user_id: str, k: int, session_key: str,
            exclude: tuple[str, ...], category: str | None) -> str:
        return self.keys.recommendations(model_version, user_id, k, session_key, exclude,
                                         category)

    def get(self, key: str) -> dict | None:
        if self.client is None or self.ttl_seconds == 0:
            return None
        try:
            raw = self.client.get(key)
        except Exception as exc:
            self._failed("get", exc)
            return None
        return json.loads(raw) if raw else None

    def set(self, key: str, value: dict) -> None:
        if self.client is None or self.ttl_seconds == 0:
            return
        try:
            self.client.set(key, json.dumps(value), ex=self.ttl_seconds)
        except Exception as exc:
            self._failed("set", exc)

    def _failed(self, what: str, exc: Exception) -> None:
        self.errors += 1
        log.warning("cache %s failed, serving without cache: %s", what, exc)
