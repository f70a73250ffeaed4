"""extract: read a source for a time window and land canonical events in the lake's raw zone.

Idempotent by event_id: re-running a window writes nothing new. Lines that cannot be
read and events without a usable timestamp go to quarantine with the reason.
"""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from recsys.components.extract.source import local_source, source_listing
from recsys.core.data.columns import Columns
from recsys.core.data.event_store import RAW_ZONE, append_partitioned, read_window
from recsys.core.data.fingerprint import listing_sha256, source_sha256
from recsys.core.data.lake import Lake
from recsys.core.data.quarantine import (
    quarantine_lines,
    quarantine_rows,
    reason_counts,
    write_quarantine,
)
from recsys.core.data.readers import read_source
from recsys.core.data.readers.base import ReadResult
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from recsys.core.errors import ConfigError

log = logging.getLogger(__name__)
C = Columns
LAKE_SOURCE = "lake"


class ExtractConfig(BaseModel):
    """What to extract and where to put it."""

    model_config = ConfigDict(extra="forbid")

    source: str
    """A local file or folder, an `s3://bucket/key-or-prefix`, or `lake`: the events the
    stream's lake sink already landed in the raw zone (nothing to read, only the window)."""
    format: str | None = None
    """Source layout; None detects it from the header."""
    start: datetime | None = None
    """Window start (inclusive, UTC); None means from the beginning."""
    end: datetime | None = None
    """Window end (exclusive, UTC); None means up to the end."""
    source_sha256: str | None = None
    """The source's SHA-256 when the caller already computed it (else computed here)."""


class ExtractReport(BaseModel):
    """What an extract run read and wrote."""

    source: str
    source_sha256: str
    format: str | None
    window_start: datetime | None
    window_end: datetime | None
    rows_read: int
    rows_in_window: int
    rows_outside_window: int
    rows_written: int
    rows_already_present: int
    rows_duplicate_in_source: int
    rows_quarantined: int
    quarantine_reasons: dict[str, int]
    files_written: list[str] = Field(default_factory=list)
    corrupt_files: list[str] = Field(default_factory=list)
    """Lake files that could not be decoded, moved to the corrupt zone during this run."""


def fingerprint_source(source: str, lake: Lake, s3_endpoint_url: str | None = None) -> str:
    """What changes when the data a scheduled run would extract changes: the listing (names,
    sizes, ETags or modification times) of the source, or of the lake's raw zone for
    `source=lake`. Taken every run, it keys extract's cache, so a recurring run re-extracts
    new data and reuses the cached extract only for the same data."""
    if source == LAKE_SOURCE:
        return listing_sha256(lake.describe(RAW_ZONE))
    return listing_sha256(source_listing(source, s3_endpoint_url))


def extract(config: ExtractConfig, lake: Lake,
            s3_endpoint_url: str | None = None) -> tuple[ExtractReport, pd.DataFrame]:
    """Land the window's events in the raw zone; returns the report and the lake's raw events
    in the window - everything extracted so far, not just this source - so that a daily
    incremental source still trains on the full history the window asks for."""
    if config.start and config.end and config.start >= config.end:
        raise ConfigError(f"window start {config.start} is not before end {config.end}")
    if config.source == LAKE_SOURCE:
        return _from_lake(config, lake)
    with local_source(config.source, s3_endpoint_url) as path:
        fingerprint = config.source_sha256 or source_sha256(path)
        result = read_source(path, config.format)
    window, refused, outside = split_read(result, config)
    set_aside_before = len(lake.set_aside_keys)
    written = append_partitioned(lake, RAW_ZONE, window, C.event_id, RAW_EVENT_SCHEMA)
    quarantined = write_quarantine(lake, refused)
    report = ExtractReport(
        source=config.source, source_sha256=fingerprint, format=config.format,
        window_start=config.start, window_end=config.end, rows_read=len(result.events)
        + len(result.rejects), rows_in_window=len(window),
        rows_outside_window=outside, rows_written=written.written,
        rows_already_present=written.already_present,
        rows_duplicate_in_source=written.duplicates_in_batch, rows_quarantined=len(refused),
        quarantine_reasons=reason_counts(refused[C.reason]) if len(refused) else {},
        files_written=written.files + quarantined.files,
    )
    log.info("extract: %d read, %d in window, %d new, %d already in the lake, "
             "%d duplicates in the source, %d quarantined", report.rows_read,
             report.rows_in_window, report.rows_written, report.rows_already_present,
             report.rows_duplicate_in_source, report.rows_quarantined)
    events = read_window(lake, RAW_ZONE, RAW_EVENT_SCHEMA, config.start, config.end)
    report.corrupt_files = lake.set_aside_keys[set_aside_before:]
    return report, events


def split_read(result: ReadResult, config: ExtractConfig) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                   int]:
    """(the events in the window, the refused rows in the quarantine layout, how many events
    fell outside the window) of what a reader returned: row by row, so reading the files
    of a source one by one (the spark engine) gives the same rows."""
    events = result.events
    no_time = events[C.timestamp].isna()
    refused = pd.concat([
        quarantine_lines(result.rejects),
        quarantine_rows(events[no_time], events.loc[no_time, C.parse_error].fillna(
            "timestamp missing")),
    ], ignore_index=True)
    in_window = ~no_time
    if config.start is not None:
        in_window &= events[C.timestamp] >= pd.Timestamp(config.start)
    if config.end is not None:
        in_window &= events[C.timestamp] < pd.Timestamp(config.end)
    outside = int((~in_window).sum()) - int(no_time.sum())
    kept = events if in_window.all() else events[in_window]  # usually all: no copy
    kept = kept.copy(deep=False)
    kept.index = pd.RangeIndex(len(kept))
    return kept, refused, outside


def _from_lake(config: ExtractConfig, lake: Lake) -> tuple[ExtractReport, pd.DataFrame]:
    """The raw zone's window as written by the stream sink (and earlier extracts)."""
    set_aside_before = len(lake.set_aside_keys)
    events = read_window(lake, RAW_ZONE, RAW_EVENT_SCHEMA, config.start, config.end)
    keys = sorted(lake.list(RAW_ZONE))
    fingerprint = hashlib.sha256("\n".join(keys).encode()).hexdigest()
    report = ExtractReport(
        source=config.source, source_sha256=fingerprint, format="lake",
        window_start=config.start, window_end=config.end, rows_read=len(events),
        rows_in_window=len(events), rows_outside_window=0, rows_written=0,
        rows_already_present=len(events), rows_duplicate_in_source=0, rows_quarantined=0,
        quarantine_reasons={}, corrupt_files=lake.set_aside_keys[set_aside_before:])
    log.info("extract: %d events of the lake's raw zone in the window (from %d files)",
             len(events), len(keys))
    return report, events
