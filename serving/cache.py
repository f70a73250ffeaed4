"""Recommendation lists cached in Redis. A failing Redis degrades to no cache (counted)."""
from __future__ import annotations

import hashlib
import json
import logging

log = logging.getLogger(__name__)


def cache_key(model_version: str, user_id: str, k: int, session_key: str,
              exclude: tuple[str, ...], category: str | None) -> str:
    """Keyed by everything that changes the answer: a new champion or a session event that
    changes the session's recent items or top category (`LiveSession.key()`) gives a new key,
    so a stale list is never served."""
    options = hashlib.sha1(json.dumps([sorted(exclude), category]).encode()).hexdigest()[:12]
    return f"recsys:recs:v{model_version}:{user_id}:{k}:{session_key}:{options}"


class RecommendationCache:
    def __init__(self, client, ttl_seconds: int):
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.errors = 0

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
