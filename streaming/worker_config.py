"""One pydantic base for the stream workers' configs (the session processor, the lake sink,
the quarantine sink): the consumer-group settings every worker reads the bus with, declared
and validated once.

Each worker's config (`ProcessorConfig`, `SinkConfig`, `QuarantineSinkConfig`) adds its own
fields and names its own defaults (group, consumer, how long a read blocks); the checks of
a shared field are the ones here, whichever worker it is given to. The sizes of a read
(`batch_size` for the processor, `read_count` for the sinks) and the sinks' flush age keep
their names and share their type (`ReadCount`, `FlushSeconds`).
"""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

GroupName = Annotated[str, Field(min_length=1)]
"""A consumer group on the bus (Redis Streams' group, Kafka's group id)."""
ConsumerName = Annotated[str, Field(min_length=1)]
"""One consumer of a group (Redis Streams' consumer, Kafka's client id)."""
BlockMs = Annotated[int, Field(ge=0)]
"""How long a read waits for messages, in milliseconds (0: it does not wait)."""
ReclaimIdleMs = Annotated[int, Field(ge=0)]
"""Messages another consumer took this long ago, in milliseconds, and never acknowledged
are taken over (the consumer died)."""
ReadCount = Annotated[int, Field(ge=1)]
"""The most messages one read takes."""
FlushSeconds = Annotated[float, Field(ge=0)]
"""A sink writes out what it holds once the oldest of it has waited this long (0: at every
poll)."""
RECLAIM_IDLE_MS = 30_000


class StreamWorkerConfig(BaseModel):
    """What every stream worker reads the bus with; a worker's config subclasses it."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    group: GroupName
    """The consumer group the worker reads in (its kind: every processor shares one)."""
    consumer: ConsumerName
    """This worker's name in its group (one per running worker)."""
    block_ms: BlockMs = 500
    """How long a read waits for messages when there are none."""
    reclaim_idle_ms: ReclaimIdleMs = RECLAIM_IDLE_MS
    """When a dead consumer's unacknowledged messages are taken over."""
