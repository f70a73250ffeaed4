"""The lake sink: a second consumer group landing the bus's events as Parquet in the lake.

Events are buffered until `max_events` or `max_seconds`, then written (zstd Parquet, atomic
like every lake write) into the raw zone partitioned by date and hour:
`raw/events/event_date=YYYY-MM-DD/hour=HH/part-<hash of the event ids>.parquet`, and only
then acknowledged. The raw zone is where `extract` lands files too, so validate/preprocess
(and `extract --source lake`) read streamed and batch-loaded events alike.

One idempotency rule for the raw zone, shared with extract: an event id is written once per
date partition `raw/events/event_date=D/`, whichever writer (extract's files directly in it,
the sink's in its `hour=HH/` folders) got there first. Redelivery after a crash, or an event
both extracted from a file and streamed, therefore never doubles a row. The sink knows the
ids of the date partitions it writes to (loaded from the lake on first touch), at most
`max_seen_partitions` days in memory, the most recently used; a day that was let go is read
again from the lake when an event for it comes back: the bound costs a read, never a
duplicate. A remembered day is listed again before each write into it, and files another
writer landed since (an extract of the same day) are read and their ids added.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from recsys.core.data.columns import Columns
from recsys.core.data.event_store import RAW_ZONE, partition_key, read_event_files
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from recsys.streaming.bus import BufferedGroupWorker, EventBus, GroupReader
from recsys.streaming.worker_config import (
    ConsumerName,
    FlushSeconds,
    GroupName,
    ReadCount,
    StreamWorkerConfig,
)

log = logging.getLogger(__name__)
C = Columns
GROUP = "lake-sink"


class SinkConfig(StreamWorkerConfig):
    group: GroupName = GROUP
    consumer: ConsumerName = "sink-1"
    max_events: ReadCount = 20_000
    """Events held before they are written out."""
    max_seconds: FlushSeconds = 30.0
    read_count: ReadCount = 5000
    max_seen_partitions: int = 3


@dataclass
class SinkStats:
    messages: int = 0
    written: int = 0
    duplicates: int = 0
    files: int = 0
    bytes: int = 0
    flushes: int = 0
    seconds: float = 0.0


@dataclass
class _PartitionIds:
    """The event ids of a date partition and the files they were read from."""

    files: frozenset[str]
    ids: set[str]


def read_event_ids(lake: Lake, keys: list[str]) -> list[str]:
    # a corrupt file is set aside (core.event_store): the rest of the day still counts
    return read_event_files(lake, keys, RAW_EVENT_SCHEMA, columns=[C.event_id]) \
        .column(C.event_id).to_pylist()


def hour_prefix(day: str, hour: str) -> str:
    return f"{partition_key(RAW_ZONE, day)}/hour={hour}"


def rows_to_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for name in RAW_EVENT_SCHEMA.names:
        if name not in frame.columns:
            frame[name] = None
    frame[C.timestamp] = pd.to_datetime(frame[C.timestamp], unit="ms", utc=True)
    return frame[list(RAW_EVENT_SCHEMA.names)]


class LakeSink(BufferedGroupWorker):
    def __init__(self, bus: EventBus, lake: Lake, config: SinkConfig | None = None):
        self.bus = bus
        self.lake = lake
        self.config = config or SinkConfig()
        self.stats = SinkStats()
        self.max_buffered, self.max_seconds = self.config.max_events, self.config.max_seconds
        self._start_buffer()
        self._seen: OrderedDict[str, _PartitionIds] = OrderedDict()
        self.reader = GroupReader(bus, self.config.group, self.config.consumer,
                                  self.config.read_count, self.config.block_ms,
                                  self.config.reclaim_idle_ms)
        if hasattr(bus, "on_revoke"):  # Kafka: what it holds is written and acknowledged
            bus.on_revoke(self.config.group, self.flush)  # before a rebalance moves it

    def flush(self) -> int:
        """Write the buffer to the lake, then acknowledge it; returns rows written."""
        if not self._buffer:
            return 0
        started = time.perf_counter()
        messages, frame = self._buffer, rows_to_frame([m.row for m in self._buffer])
        written = 0
        frame = frame.drop_duplicates(C.event_id)
        self.stats.duplicates += len(messages) - len(frame)
        days = frame[C.timestamp].dt.strftime("%Y-%m-%d")
        hours = frame[C.timestamp].dt.strftime("%H")
        for (day, hour), part in frame.groupby([days, hours], sort=True):
            prefix = hour_prefix(day, hour)
            written_before = self._partition_ids(partition_key(RAW_ZONE, day))
            seen = written_before.ids
            # membership per row: Series.isin would copy the whole day's set on every flush
            fresh = part[[event_id not in seen for event_id in part[C.event_id]]]
            self.stats.duplicates += len(part) - len(fresh)
            if fresh.empty:
                continue
            ids = fresh[C.event_id].astype(str)
            digest = hashlib.sha1("\n".join(sorted(ids)).encode()).hexdigest()[:16]
            table = pa.Table.from_pandas(fresh, schema=RAW_EVENT_SCHEMA, preserve_index=False)
            key = f"{prefix}/part-{digest}.parquet"
            self.stats.bytes += self.lake.write_table(key, table)
            seen.update(ids)
            written_before.files |= {key}  # its own file: never read back
            written += len(fresh)
            self.stats.files += 1
        self.bus.ack(self.config.group, messages)
        self._buffer, self._oldest = [], None
        self.stats.messages += len(messages)
        self.stats.written += written
        self.stats.flushes += 1
        self.stats.seconds += time.perf_counter() - started
        log.info("lake sink: %d events -> %d new rows", len(messages), written)
        return written

    def _partition_ids(self, prefix: str) -> _PartitionIds:
        """The ids written to a date partition. The partition's listing is taken on every
        call (one LIST per day per flush): files another writer (an extract) landed since
        are read and added, so an event it wrote is never written again; a file gone from
        the listing (set aside as corrupt) makes the whole day read again."""
        listing = frozenset(self.lake.list(prefix))
        known = self._seen.get(prefix)
        if known is not None and known.files <= listing:
            self._seen.move_to_end(prefix)
            new_files = sorted(listing - known.files)
        else:
            known = self._seen[prefix] = _PartitionIds(frozenset(), set())
            new_files = sorted(listing)
        if new_files:
            known.ids.update(read_event_ids(self.lake, new_files))
            known.files = known.files | set(new_files)
        while len(self._seen) > self.config.max_seen_partitions:
            self._seen.popitem(last=False)
        return known
