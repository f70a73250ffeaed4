"""Every Redis key the project writes, in one place.

All keys live under one namespace, the event stream's name (`Settings.event_stream`,
default `recsys:events`), so two deployments sharing a Redis never see each other's keys
and `SCAN <namespace>:*` finds everything of one deployment. Feast's own online-store rows
are the one exception: their keys are Feast's format (`recsys.feature_repo.features.feast_adapter`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from recsys.core.settings import DEFAULT_EVENT_STREAM


@dataclass(frozen=True)
class RedisKeys:
    """Key formats under one namespace."""

    namespace: str = DEFAULT_EVENT_STREAM

    # -- event bus (Redis Streams) ------------------------------------------------------
    @property
    def stream(self) -> str:
        """The stream of collected events."""
        return self.namespace

    def partition_stream(self, partition: int, partitions: int) -> str:
        """The stream of one partition: the stream itself when there is one partition, so a
        single-partition deployment keeps its key."""
        return self.stream if partitions == 1 else f"{self.namespace}:p{partition}"

    @property
    def dead_letters(self) -> str:
        """The stream of refused events, each with its reason."""
        return f"{self.namespace}:dead"

    @property
    def seen_prefix(self) -> str:
        """Prefix of the per-event-id dedup markers (`<prefix><event_id>`, with a TTL)."""
        return f"{self.namespace}:seen:"

    # -- stream processor state -----------------------------------------------------------
    @property
    def session_prefix(self) -> str:
        return f"{self.namespace}:session"

    @property
    def session_state_prefix(self) -> str:
        """Prefix of a user's session state (`<prefix><user_id>`)."""
        return f"{self.session_prefix}:state:"

    @property
    def recent_items_prefix(self) -> str:
        """Prefix of a user's recent-items list (`<prefix><user_id>`)."""
        return f"{self.session_prefix}:recent:"

    @property
    def cart_timers(self) -> str:
        """Sorted set of users whose cart-abandonment timer is due at its score."""
        return f"{self.session_prefix}:cart_timers"

    @property
    def watermark(self) -> str:
        """Event-time watermark of the processor (milliseconds)."""
        return f"{self.session_prefix}:watermark"

    def cart_timers_of(self, partition: int, partitions: int) -> str:
        """A partition's cart timers (only that partition's owner fires them)."""
        return self.cart_timers if partitions == 1 else f"{self.cart_timers}:p{partition}"

    def watermark_of(self, partition: int, partitions: int) -> str:
        """A partition's event-time watermark (event time progresses per partition)."""
        return self.watermark if partitions == 1 else f"{self.watermark}:p{partition}"

    # -- serving --------------------------------------------------------------------------
    def recommendations(self, model_version: str, user_id: str, k: int, session_key: str,
                        exclude: tuple[str, ...], category: str | None) -> str:
        """A cached recommendation list, keyed by everything that changes the answer: a new
        champion or a session event that changes the session's recent items or top category
        (`LiveSession.key()`) gives a new key, so a stale list is never served."""
        options = hashlib.sha1(json.dumps([sorted(exclude), category]).encode()).hexdigest()[:12]
        return (f"{self.namespace}:recs:v{model_version}:{user_id}:{k}:{session_key}:"
                f"{options}")
