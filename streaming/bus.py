"""The small interface every event bus offers the collector, the processor and the sink.

Delivery is at least once: a consumer acknowledges a message only after its own write
succeeded, and a message that was delivered but never acknowledged (its consumer died) is
handed out again (`reclaim`). Consumers therefore make their writes idempotent.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from recsys.core.errors import RecsysError


class BusUnavailable(RecsysError):
    """The bus cannot be reached or refuses writes (full, not durable): nothing was stored."""

    status_code = 503


class BusOutcomeUnknown(BusUnavailable):
    """The bus took the write but did not answer (a timeout, a connection lost mid-call):
    some or all of it may be stored. A retry with the same event ids is safe: ids already
    stored count as duplicates."""


class Message(NamedTuple):
    """One delivered event (a tuple: a consumer builds ~40k of these per second)."""

    id: str
    row: dict
    stream: str = ""
    """The stream (partition) the message came from, where the bus has several."""


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

    def trim(self) -> int:
        """Drop what every consumer group has acknowledged; returns how many entries went."""
        ...

    def ping(self) -> bool:
        ...


class Every:
    """A chore's timer: `due()` is True at most once per `seconds` (monotonic clock); the
    first call is due."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self.clock = clock
        self._last: float | None = None

    def due(self) -> bool:
        now = self.clock()
        if self._last is not None and now - self._last < self.seconds:
            return False
        self._last = now
        return True


@dataclass
class GroupReader:
    """How a worker reads its group: new messages on every poll, plus, on timers that run
    whatever the traffic, the messages a dead consumer of the group left unacknowledged for
    `reclaim_idle_ms`, and the trim of what every group has acknowledged (retention by
    progress). All bus calls stay on the caller's thread."""

    bus: EventBus
    group: str
    consumer: str
    count: int
    block_ms: int
    reclaim_idle_ms: int
    reclaim_every: Every = field(default_factory=lambda: Every(5.0))
    trim_every: Every = field(default_factory=lambda: Every(5.0))
    trimmed: int = 0
    reclaimed: int = 0
    last_read: float = field(default_factory=time.monotonic)
    """When the bus last answered a read (monotonic): the worker's liveness."""

    def read(self) -> list[Message]:
        messages = self.bus.read(self.group, self.consumer, self.count, self.block_ms)
        self.last_read = time.monotonic()
        if self.reclaim_every.due():
            taken = self.bus.reclaim(self.group, self.consumer, self.reclaim_idle_ms, self.count)
            held = {m.id for m in messages}
            taken = [m for m in taken if m.id not in held]
            self.reclaimed += len(taken)
            messages = messages + taken
        if self.trim_every.due():
            self.trimmed += self.bus.trim()
        return messages


class BufferedGroupWorker(ABC):
    """A worker that buffers its group's messages and writes them out in batches: at
    `max_buffered` messages or when the oldest has waited `max_seconds` (then `flush`,
    which writes and acknowledges). Subclasses set `reader` and implement `flush`."""

    reader: GroupReader
    max_buffered: int
    max_seconds: float

    def _start_buffer(self) -> None:
        self._buffer: list[Message] = []
        self._oldest: float | None = None

    def poll(self) -> int:
        if self._due():  # a flush that failed (lake full, bus down) is retried before more
            self.flush()  # is read: the buffer stays bounded however long the outage
        messages = self.reader.read()
        if messages:
            self._buffer.extend(messages)
            self._oldest = self._oldest or time.monotonic()
        if self._due():
            self.flush()
        return len(messages)

    def _due(self) -> bool:
        return len(self._buffer) >= self.max_buffered or (
            self._oldest is not None and time.monotonic() - self._oldest >= self.max_seconds)

    def run(self, stop: Callable[[], bool] = lambda: False,
            idle_exit_polls: int | None = None) -> None:
        """Poll until `stop()` (or `idle_exit_polls` empty polls in a row), then flush."""
        idle = 0
        while not stop():
            idle = 0 if self.poll() else idle + 1
            if idle_exit_polls is not None and idle >= idle_exit_polls:
                break
        self.flush()

    @abstractmethod
    def flush(self) -> int:
        """Write the buffered messages out, then acknowledge them; returns rows written."""
