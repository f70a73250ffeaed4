"""The quarantine sink: every event the collector refused lands in the lake's quarantine.

The collector writes each refused event to the dead-letter stream with its reason (before it
answers 422). This worker reads that stream with a consumer group of its own, writes the
records into the lake's quarantine zone - the same zone and layout as the batch path's
refused rows (`recsys.core.data.quarantine`: the event's columns where they could be read,
`reason` = `collector: <field>: <message>`, `raw` = the refused JSON, partitioned by the
day the collector received it) - and acknowledges them only then; acknowledged entries
leave the stream (retention by progress). A record redelivered after a crash is the same
quarantine row (same content, same reason) and is kept once.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import orjson
import pandas as pd

from recsys.core.data.columns import Columns
from recsys.core.data.lake import Lake
from recsys.core.data.quarantine import quarantine_lines, write_quarantine
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
GROUP = "quarantine-sink"
REASON_PREFIX = "collector"


class QuarantineSinkConfig(StreamWorkerConfig):
    group: GroupName = GROUP
    consumer: ConsumerName = "quarantine-1"
    max_records: ReadCount = 5_000
    """Dead letters held before they are written out."""
    max_seconds: FlushSeconds = 30.0
    read_count: ReadCount = 1000


@dataclass
class QuarantineSinkStats:
    records: int = 0
    written: int = 0
    already_present: int = 0
    seconds: float = 0.0


def quarantine_frame(records: list[dict]) -> pd.DataFrame:
    """Dead-letter records (reason, errors, raw, received_at) as quarantine rows."""
    rejects = pd.DataFrame({
        C.reason: [f"{REASON_PREFIX}: {r.get('reason') or _first_error(r)}" for r in records],
        C.raw: [r["raw"] if isinstance(r.get("raw"), str) else
                orjson.dumps(r.get("raw")).decode() for r in records]})
    frame = quarantine_lines(rejects)
    received = pd.to_datetime([r.get("received_at") for r in records], unit="ms", utc=True)
    frame[C.timestamp] = pd.Series(received, index=frame.index).astype("datetime64[ms, UTC]")
    for column in (C.event_id, C.user_id):
        frame[column] = [_field(r.get("raw"), column) for r in records]
    return frame


def _first_error(record: dict) -> str:
    errors = record.get("errors") or []
    if errors:
        return f"{errors[0].get('field')}: {errors[0].get('message')}"
    return "refused"


def _field(raw, name: str) -> str | None:
    value = raw.get(name) if isinstance(raw, dict) else None
    return value[:256] if isinstance(value, str) else None


class QuarantineSink(BufferedGroupWorker):
    def __init__(self, dead_letters: EventBus, lake: Lake,
                 config: QuarantineSinkConfig | None = None):
        self.bus = dead_letters
        self.lake = lake
        self.config = config or QuarantineSinkConfig()
        self.stats = QuarantineSinkStats()
        self.max_buffered, self.max_seconds = self.config.max_records, self.config.max_seconds
        self._start_buffer()
        self.reader = GroupReader(dead_letters, self.config.group, self.config.consumer,
                                  self.config.read_count, self.config.block_ms,
                                  self.config.reclaim_idle_ms)

    def flush(self) -> int:
        """Write the buffered records to the quarantine zone, then acknowledge them."""
        if not self._buffer:
            return 0
        started = time.perf_counter()
        messages = self._buffer
        result = write_quarantine(self.lake, quarantine_frame([m.row for m in messages]))
        self.bus.ack(self.config.group, messages)
        self.bus.trim()  # what is quarantined leaves the stream now, not on the next timer
        self._buffer, self._oldest = [], None
        self.stats.records += len(messages)
        self.stats.written += result.written
        self.stats.already_present += result.already_present + result.duplicates_in_batch
        self.stats.seconds += time.perf_counter() - started
        log.info("quarantine sink: %d refused events -> %d new quarantine rows",
                 len(messages), result.written)
        return result.written
