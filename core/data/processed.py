"""The processed snapshot: what preprocess writes and train, evaluate and features read.

One definition of the hand-over between steps (tables and summary) so that no step
imports another step.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from recsys.core.data.columns import Columns
from recsys.core.data.lake import Lake
from recsys.core.data.schema import EVENT_SCHEMA

TABLES = ("events", "train", "holdout", "user_features", "item_features")
SUMMARY_FILE = "summary.json"
PROCESSED_ZONE = "processed"
FEATURE_TABLES_FILE = "feature_tables.json"
"""In a snapshot handed on by the spark engine's step: the feature table snapshots its job
already wrote to the lake (the features step then only applies and materializes)."""
EVENTS_SCHEMA = EVENT_SCHEMA.append(pa.field(Columns.weight, pa.float64()))
"""The snapshot's `events`: the cleaned window's events with their interaction weight."""


@dataclass
class Processed:
    """Everything preprocess produces; `events` is the cleaned, weighted window."""

    events: pd.DataFrame
    train: pd.DataFrame
    holdout: pd.DataFrame
    user_features: pd.DataFrame
    item_features: pd.DataFrame
    summary: dict

    def session_events(self, after_split: bool) -> pd.DataFrame:
        """(session_id, item_id, timestamp, user_id) of the window's events before the
        split (from the lookback start: what models learn sessions from) or from it on (the
        holdout's sessions, for evaluation)."""
        events = self.events
        split = pd.Timestamp(self.summary["split_time"])
        keep = events["timestamp"] >= split if after_split else events["timestamp"] < split
        start = self.summary.get("train_start")
        if start and not after_split:
            keep &= events["timestamp"] >= pd.Timestamp(start)
        columns = [c for c in ("session_id", "item_id", "timestamp", "user_id")
                   if c in events.columns]
        return events.loc[keep, columns]


def write_processed(processed: Processed, lake: Lake, prefix: str = "") -> None:
    """Write every output under `prefix` (Parquet tables, the JSON summary).

    A table that is None was written by the caller as ordered parts, `<table>/part-N.parquet`
    (the spark engine's tasks write the events that way); readers take either form."""
    base = f"{prefix.rstrip('/')}/" if prefix else ""
    for name in TABLES:
        frame = getattr(processed, name)
        if frame is not None:
            lake.write_table(f"{base}{name}.parquet",
                             pa.Table.from_pandas(frame, preserve_index=False))
    # the summary last: its presence marks a complete snapshot
    lake.write_json(f"{base}{SUMMARY_FILE}", processed.summary)


def table_parts_key(prefix: str, table: str, part: int) -> str:
    """The key of part `part` of a table written in parts (read back in part order)."""
    base = f"{prefix.rstrip('/')}/" if prefix else ""
    return f"{base}{table}/part-{part:05d}.parquet"


def read_processed(lake: Lake, prefix: str = "") -> Processed:
    """Read what `write_processed` wrote."""
    base = f"{prefix.rstrip('/')}/" if prefix else ""
    tables = {name: _read_table(lake, base, name).to_pandas() for name in TABLES}
    return Processed(**tables, summary=lake.read_json(f"{base}{SUMMARY_FILE}"))


def _read_table(lake: Lake, base: str, name: str):
    single = f"{base}{name}.parquet"
    if lake.exists(single):
        return lake.read_table(single)
    return lake.read_tables(lake.list(f"{base}{name}/"))


def snapshot_key(summary: dict) -> str:
    """A stable lake prefix for a processed snapshot: its window end plus content hash."""
    end = pd.Timestamp(summary["window_end"]).strftime("%Y%m%dT%H%M%S")
    return f"{PROCESSED_ZONE}/{end}-{summary['events_sha256'][:12]}"
