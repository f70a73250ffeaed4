"""Served lists written to the lake in batches, for prediction-drift monitoring.

Layout: `serving/requests/date=YYYY-MM-DD/part-<time ns>-<uuid>.parquet`, one row per answer
(part names sort in write order). A batch is handed to a background writer thread when it
reaches `batch_size` rows or is older than `flush_seconds` (checked by the writer too, so a
quiet service does not hold rows; what is left is written at exit): a request only appends a
tuple, the Arrow table and the (atomic, like every lake write) Parquet write happen off the request
path - written inline they stalled every request behind them. A failed write keeps the rows
for the next try and is counted; `flush()` writes everything now (at unload).
"""
from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import uuid

import pandas as pd
import pyarrow as pa

from recsys.core.data.lake import Lake

log = logging.getLogger(__name__)
ZONE = "serving/requests"
SCHEMA = pa.schema([
    ("timestamp", pa.timestamp("ms", tz="UTC")), ("endpoint", pa.string()),
    ("user_id", pa.string()), ("model_version", pa.string()), ("path", pa.string()),
    ("fallback", pa.bool_()), ("cached", pa.bool_()), ("k", pa.int32()),
    ("item_ids", pa.list_(pa.string())), ("scores", pa.list_(pa.float64())),
    ("experiment", pa.string()), ("variant", pa.string()),
    ("recommendation_id", pa.string()),
])
"""Rows whose `experiment` is set are that experiment's exposures (the list a user saw);
files written before these columns existed read them as nulls."""
MS_PER_DAY = 86_400_000


class RequestLog:
    def __init__(self, lake: Lake, batch_size: int = 1000, flush_seconds: float = 60.0,
                 max_pending: int = 200_000):
        """`max_pending`: rows kept in memory while the lake refuses writes; beyond it the
        oldest are dropped and counted in `dropped` (logged), never an unbounded buffer."""
        self.lake = lake
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self._rows: list[tuple] = []
        self._oldest: float | None = None
        self._lock = threading.Lock()
        self._batches: queue.Queue[list[tuple]] = queue.Queue()
        self._writer: threading.Thread | None = None
        self.failures = 0
        self.max_pending = max_pending
        self.dropped = 0

    def record(self, endpoint: str, subject: str, result, k: int) -> None:
        row = (time.time_ns() // 1_000_000, endpoint, subject, result.model_version,
               result.path, result.fallback, result.cached, k, list(result.item_ids),
               list(result.scores), result.experiment, result.variant,
               result.recommendation_id)
        if self._writer is None:
            self._start_writer()
        with self._lock:
            self._rows.append(row)
            self._oldest = self._oldest or time.monotonic()
            if len(self._rows) >= self.batch_size or \
                    time.monotonic() - self._oldest >= self.flush_seconds:
                # queued under the lock: flush() finds rows in memory or in the queue
                rows, self._rows, self._oldest = self._rows, [], None
                self._batches.put(rows)

    def flush(self) -> int:
        """Wait for the batches handed off, then write what is left; returns rows written
        by this call (a failed write stops here: its rows stay for the next try)."""
        written = 0
        while True:
            self._batches.join()
            with self._lock:
                rows, self._rows, self._oldest = self._rows, [], None
            if not rows:
                if self._batches.unfinished_tasks == 0:
                    return written
                continue  # the writer handed off a due batch meanwhile: wait for it
            done = self._write(rows)
            if not done:
                return written
            written += done

    def _start_writer(self) -> None:
        with self._lock:
            if self._writer is not None:
                return
            self._writer = threading.Thread(target=self._write_batches, name="request-log",
                                            daemon=True)
            self._writer.start()
        # MLServer stops on SIGTERM without unloading models: write what is left at exit
        atexit.register(self.flush)

    def _write_batches(self) -> None:
        """Write handed-off batches; between them, write rows that have waited
        `flush_seconds` even when no request comes to hand them off (quiet traffic)."""
        while True:
            try:
                rows = self._batches.get(timeout=self.flush_seconds)
            except queue.Empty:
                self._hand_off_due()
                continue
            try:
                self._write(rows)
            finally:
                self._batches.task_done()

    def _hand_off_due(self) -> None:
        """Queue the rows that waited `flush_seconds` (under the lock, so `flush()` at exit
        always finds them either in memory or in the queue it waits for)."""
        with self._lock:
            if self._oldest is None or time.monotonic() - self._oldest < self.flush_seconds:
                return
            rows, self._rows, self._oldest = self._rows, [], None
            self._batches.put(rows)

    def _write(self, rows: list[tuple]) -> int:
        if not rows:
            return 0
        try:
            columns = list(zip(*rows))
            table = pa.Table.from_arrays([pa.array(values, type=field.type) for values, field
                                          in zip(columns, SCHEMA)], schema=SCHEMA)
            day = time.strftime("%Y-%m-%d", time.gmtime(rows[0][0] / 1000))
            self.lake.write_table(f"{ZONE}/date={day}/part-{time.time_ns()}-"
                                  f"{uuid.uuid4().hex[:8]}.parquet", table)
        except Exception as exc:  # keep the rows; serving must not fail on the log
            with self._lock:
                self.failures += 1
                self._rows = rows + self._rows
                excess = len(self._rows) - self.max_pending
                if excess > 0:
                    self._rows = self._rows[excess:]
                    self.dropped += excess
                    log.error("request log: %d rows dropped after the lake refused writes "
                              "(%d in all)", excess, self.dropped)
                self._oldest = self._oldest or time.monotonic()
            log.warning("request log write failed (%d rows kept): %s", len(rows), exc)
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


def recently_active_users(lake: Lake, limit: int, now: pd.Timestamp | None = None
                          ) -> list[tuple[str, int]]:
    """(user_id, k) of the `limit` users whose `recommend` requests are the newest in the
    request log of today and yesterday (UTC), newest first: whose lists a starting server
    warms. Only those two days' files are read."""
    if limit <= 0:
        return []
    now = now or pd.Timestamp.now(tz="UTC")
    keys = [key for day in (now, now - pd.Timedelta(days=1))
            for key in lake.list(f"{ZONE}/date={day:%Y-%m-%d}")]
    if not keys:
        return []
    frame = lake.read_tables(keys, schema=SCHEMA).to_pandas()
    frame = frame[frame["endpoint"] == "recommend"].sort_values("timestamp", kind="stable")
    newest = frame.drop_duplicates("user_id", keep="last").tail(limit).iloc[::-1]
    return [(str(user), int(k)) for user, k in zip(newest["user_id"], newest["k"])]
