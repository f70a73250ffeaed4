"""Date-partitioned event datasets in the lake, appended idempotently.

Layout: `<zone>/event_date=YYYY-MM-DD/part-<content hash>.parquet`. An append reads
only the key column of the partitions it touches and writes just the rows whose key is
new, so re-running a window adds nothing and never rewrites existing files.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recsys.core.data.columns import Columns
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_SCHEMA, TIMESTAMP_TYPE
from recsys.core.data.time_order import time_order_indices
from recsys.core.errors import CorruptFileError

C = Columns

RAW_ZONE = "raw/events"
CLEAN_ZONE = "clean/events"
QUARANTINE_ZONE = "quarantine/events"
UNKNOWN_DATE = "unknown"

QUARANTINE_SCHEMA = RAW_EVENT_SCHEMA.append(pa.field(C.reason, pa.string())).append(
    pa.field(C.raw, pa.string())
).append(pa.field(C.quarantine_id, pa.string()))


@dataclass
class AppendResult:
    """What an append wrote."""

    written: int = 0
    already_present: int = 0
    duplicates_in_batch: int = 0
    files: list[str] = field(default_factory=list)


def partition_key(zone: str, day: str) -> str:
    return f"{zone}/event_date={day}"


def event_dates(frame: pd.DataFrame) -> pd.Series:
    """The partition value per row: the UTC date of its timestamp, or 'unknown'. Each
    distinct day is formatted once (formatting a million timestamps one by one took
    seconds)."""
    codes, days = pd.factorize(frame[C.timestamp].dt.floor("D"))
    labels = np.array([day.strftime("%Y-%m-%d") for day in days] + [UNKNOWN_DATE],
                      dtype=object)
    return pd.Series(labels[codes], index=frame.index)  # code -1 (no time): the last


def append_partitioned(lake: Lake, zone: str, frame: pd.DataFrame, key: str,
                       schema: pa.Schema) -> AppendResult:
    """Append rows whose `key` is not yet in the zone, one new file per touched date."""
    result = AppendResult()
    if frame.empty:
        return result
    unique = frame.drop_duplicates(subset=[key], keep="first")
    result.duplicates_in_batch = len(frame) - len(unique)
    frame = unique
    days = event_dates(frame)
    for day, part in frame.groupby(days, sort=True):
        prefix = partition_key(zone, str(day))
        existing_files = lake.list(prefix)
        if existing_files:
            seen = read_event_files(lake, existing_files, schema, columns=[key]).column(
                key).to_pandas()
            fresh = part[~part[key].isin(set(seen))]
        else:
            fresh = part
        result.already_present += len(part) - len(fresh)
        if fresh.empty:
            continue
        digest = hashlib.sha1("\n".join(sorted(fresh[key].astype(str))).encode()).hexdigest()[:16]
        file_key = f"{prefix}/part-{digest}.parquet"
        table = pa.Table.from_pandas(fresh[list(schema.names)], schema=schema, preserve_index=False)
        lake.write_table(file_key, table)
        result.written += len(fresh)
        result.files.append(file_key)
    return result


def read_event_files(lake: Lake, keys: list[str], schema: pa.Schema,
                     columns: list[str] | None = None) -> pa.Table:
    """The files of an event zone as one table of `schema` (or its `columns`). A file that
    cannot be decoded is moved to the lake's corrupt zone with its reason
    (`Lake.set_aside`, logged naming it) and the rest are read: one damaged file never
    stops its partition. A lake that cannot be read at all still raises."""
    tables = []
    for key in keys:
        try:
            tables.append(lake.read_tables([key], columns=columns, schema=schema))
        except CorruptFileError as exc:
            lake.set_aside(key, str(exc))
    if not tables:
        return lake.read_tables([], columns=columns, schema=schema)
    return pa.concat_tables(tables)


def partition_days(lake: Lake, zone: str) -> list[str]:
    """Every date partition present in a zone, sorted (the 'unknown' one last)."""
    days = set()
    for key in lake.list(zone):
        for piece in key.split("/"):
            if piece.startswith("event_date="):
                days.add(piece.split("=", 1)[1])
    return sorted(days, key=lambda d: (d == UNKNOWN_DATE, d))


def window_keys(lake: Lake, zone: str, start: datetime | None = None,
                end: datetime | None = None) -> list[str]:
    """The files of a zone whose date partitions can hold rows of [start, end)."""
    start_ts, end_ts = _utc(start), _utc(end)
    keys: list[str] = []
    for day in partition_days(lake, zone):
        if day == UNKNOWN_DATE:
            if start_ts is None and end_ts is None:
                keys.extend(lake.list(partition_key(zone, day)))
            continue
        d = date.fromisoformat(day)
        if start_ts is not None and d < start_ts.date():
            continue
        if end_ts is not None and d > end_ts.date():
            continue
        keys.extend(lake.list(partition_key(zone, day)))
    return keys


def in_window(frame: pd.DataFrame, start: datetime | None = None,
              end: datetime | None = None) -> pd.Series:
    """Rows with start <= timestamp < end (either bound optional)."""
    start_ts, end_ts = _utc(start), _utc(end)
    mask = pd.Series(True, index=frame.index)
    if start_ts is not None:
        mask &= frame[C.timestamp] >= start_ts
    if end_ts is not None:
        mask &= frame[C.timestamp] < end_ts
    return mask


def read_window(lake: Lake, zone: str, schema: pa.Schema, start: datetime | None = None,
                end: datetime | None = None) -> pd.DataFrame:
    """Rows of a zone with start <= timestamp < end (either bound optional), in time order
    (timestamp, then event id): filtered and sorted in Arrow, converted once."""
    table = read_event_files(lake, window_keys(lake, zone, start, end), schema)
    if table.num_rows == 0:
        return schema.empty_table().to_pandas()
    for bound, keep in ((_utc(start), pc.greater_equal), (_utc(end), pc.less)):
        if bound is not None:
            times = table.column(C.timestamp)
            table = table.filter(keep(times, pa.scalar(bound, type=times.type)))
    if table.num_rows == 0:
        return schema.empty_table().to_pandas()
    order = time_order_indices(table)
    frame = table.to_pandas()
    del table
    if order is None:  # already in time order: nothing to move
        return frame
    return frame.take(order).reset_index(drop=True)  # moves references, not strings


def _utc(moment: datetime | None) -> pd.Timestamp | None:
    if moment is None:
        return None
    ts = pd.Timestamp(moment)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.as_unit("ms")


def parse_moment(text: str | None) -> datetime | None:
    """Parse a CLI/pipeline time bound: ISO date or datetime, or epoch milliseconds; UTC."""
    if text is None or str(text).strip() == "":
        return None
    text = str(text).strip()
    if text.isdigit():
        return pd.Timestamp(int(text), unit="ms", tz="UTC").to_pydatetime()
    ts = pd.Timestamp(text)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


__all__ = [
    "RAW_ZONE", "CLEAN_ZONE", "QUARANTINE_ZONE", "QUARANTINE_SCHEMA", "TIMESTAMP_TYPE",
    "AppendResult", "append_partitioned", "read_window", "partition_days", "parse_moment",
]
