"""The small interface every event bus offers the collector, the processor and the sink.

Delivery is at least once: a consumer acknowledges a message only after its own write
succeeded, and a message that was delivered but never acknowledged (its consumer died) is
handed out again (`reclaim`). Consumers therefore make their writes idempotent.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from recsys.core.errors import RecsysError


class BusUnavailable(RecsysError):
    """The bus cannot be reached or refuses writes (full): nothing was stored."""

    status_code = 503


@dataclass(frozen=True)
class Message:
    id: str
    row: dict


@dataclass(frozen=True)
class PublishResult:
    accepted: int
    duplicates: int


class EventBus(Protocol):
    def publish(self, rows: list[dict]) -> PublishResult:
        """Store the rows, each once per dedup window of its event_id; all or nothing."""
        ...

    def dead_letter(self, records: list[dict]) -> None:
        """Store refused input with its reason (records: raw, reason, received_at)."""
        ...

    def read(self, group: str, consumer: str, count: int, block_ms: int) -> list[Message]:
        """Messages for this consumer: its own unacknowledged ones first, then new ones."""
        ...

    def ack(self, group: str, messages: list[Message]) -> None:
        ...

    def reclaim(self, group: str, consumer: str, min_idle_ms: int, count: int) -> list[Message]:
        """Take over messages another consumer of the group received but never acked."""
        ...

    def ping(self) -> bool:
        ...


RECLAIM_EVERY_IDLE_POLL = 10


def read_or_reclaim(bus: EventBus, group: str, consumer: str, count: int, block_ms: int,
                    reclaim_idle_ms: int, poll_number: int) -> list[Message]:
    """New messages; when there are none, every 10th poll takes over those a dead consumer
    of the group left unacknowledged for `reclaim_idle_ms`."""
    messages = bus.read(group, consumer, count, block_ms)
    if not messages and poll_number % RECLAIM_EVERY_IDLE_POLL == 0:
        messages = bus.reclaim(group, consumer, reclaim_idle_ms, count)
    return messages
