"""Served lists written to the lake in batches, for prediction-drift monitoring.

Layout: `serving/requests/date=YYYY-MM-DD/part-<uuid>.parquet`, one row per answer. A batch
is written (atomically, like every lake write) when it reaches `batch_size` rows or is older
than `flush_seconds`; a failed write keeps the rows for the next try and is counted.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid

import pandas as pd
import pyarrow as pa

from components.common.lake import Lake

log = logging.getLogger(__name__)
ZONE = "serving/requests"
SCHEMA = pa.schema([
    ("timestamp", pa.timestamp("ms", tz="UTC")), ("endpoint", pa.string()),
    ("user_id", pa.string()), ("model_version", pa.string()), ("path", pa.string()),
    ("fallback", pa.bool_()), ("cached", pa.bool_()), ("k", pa.int32()),
    ("item_ids", pa.list_(pa.string())), ("scores", pa.list_(pa.float64())),
])


class RequestLog:
    def __init__(self, lake: Lake, batch_size: int = 1000, flush_seconds: float = 60.0):
        self.lake = lake
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self._rows: list[dict] = []
        self._oldest: float | None = None
        self._lock = threading.Lock()
        self.failures = 0

    def record(self, endpoint: str, subject: str, result, k: int) -> None:
        row = {"timestamp": pd.Timestamp.now(tz="UTC"), "endpoint": endpoint,
               "user_id": subject, "model_version": result.model_version, "path": result.path,
               "fallback": result.fallback, "cached": result.cached, "k": k,
               "item_ids": list(result.item_ids), "scores": list(result.scores)}
        with self._lock:
            self._rows.append(row)
            self._oldest = self._oldest or time.monotonic()
            due = len(self._rows) >= self.batch_size or \
                time.monotonic() - self._oldest >= self.flush_seconds
        if due:
            self.flush()

    def flush(self) -> int:
        with self._lock:
            rows, self._rows, self._oldest = self._rows, [], None
        if not rows:
            return 0
        frame = pd.DataFrame(rows)
        frame["timestamp"] = frame["timestamp"].astype("datetime64[ms, UTC]")
        day = frame["timestamp"].iloc[0].strftime("%Y-%m-%d")
        try:
            table = pa.Table.from_pandas(frame, schema=SCHEMA, preserve_index=False)
            self.lake.write_table(f"{ZONE}/date={day}/part-{uuid.uuid4().hex}.parquet", table)
        except Exception as exc:  # keep the rows; serving must not fail on the log
            self.failures += 1
            log.warning("request log write failed (%d rows kept): %s", len(rows), exc)
            with self._lock:
                self._rows = rows + self._rows
                self._oldest = self._oldest or time.monotonic()
            return 0
        return len(rows)


def read_request_log(lake: Lake, start: pd.Timestamp | None = None,
                     end: pd.Timestamp | None = None) -> pd.DataFrame:
    keys = lake.list(ZONE)
    if not keys:
        return SCHEMA.empty_table().to_pandas()
    frame = lake.read_tables(keys, schema=SCHEMA).to_pandas()
    if start is not None:
        frame = frame[frame["timestamp"] >= start]
    if end is not None:
        frame = frame[frame["timestamp"] < end]
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
