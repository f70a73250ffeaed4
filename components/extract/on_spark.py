"""extract on the spark engine: each file of the source read by its own task with the
same reader (a large JSONL file by one task per byte range of `split_bytes`), split by the
same `split_read`, landed per date partition with the same idempotent append
(docs/spark.md)."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from recsys.components.extract.extract import (
    LAKE_SOURCE,
    ExtractConfig,
    ExtractReport,
    split_read,
)
from recsys.components.extract.source import local_source
from recsys.core.data.columns import Columns
from recsys.core.data.event_store import QUARANTINE_SCHEMA, QUARANTINE_ZONE, RAW_ZONE
from recsys.core.data.fingerprint import source_sha256
from recsys.core.data.lake import Lake
from recsys.core.data.quarantine import reason_counts
from recsys.core.data.readers import jsonl
from recsys.core.data.readers.detect import detect_format, read_file, source_files
from recsys.core.data.readers.line_ranges import byte_ranges
from recsys.core.data.schema import RAW_EVENT_COLUMNS, RAW_EVENT_SCHEMA
from recsys.core.data.spark.frames import per_batch, spark_schema, with_fields
from recsys.core.data.spark.lake_io import append_by_date, first_per_key
from recsys.core.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
C = Columns
PART, FILE, SPLIT, ROW = "_part", "_file", "_split", "_row"
WINDOW, REFUSED, OUTSIDE = "window", "refused", "outside"
READ_SCHEMA = with_fields(QUARANTINE_SCHEMA, pa.field(PART, pa.string()),
                          pa.field(FILE, pa.int64()), pa.field(SPLIT, pa.int64()),
                          pa.field(ROW, pa.int64()))
_FILES_SCHEMA = pa.schema([pa.field("path", pa.string()), pa.field("format", pa.string()),
                           pa.field(FILE, pa.int64()), pa.field(SPLIT, pa.int64()),
                           pa.field("start", pa.int64()), pa.field("end", pa.int64())])
DEFAULT_SPLIT_BYTES = 128 * 2**20
"""A JSONL file larger than this is read by one task per range of this many bytes."""
WHOLE_FILE = (0, -1)
_TALLY_SCHEMA = pa.schema([pa.field("tally", pa.string())])


def read_one(path: str, fmt: str | None, number: int, config: ExtractConfig,
             split: int = 0, byte_range: tuple[int, int] = WHOLE_FILE) -> pd.DataFrame:
    """One source file (or the lines starting in `byte_range` of a JSONL file) as rows of
    READ_SCHEMA: the window's events, the refused rows and one empty row per event outside
    the window (counted, never stored)."""
    read = read_file(Path(path), fmt) if byte_range == WHOLE_FILE else \
        jsonl.read_range(Path(path), *byte_range)
    window, refused, outside = split_read(read, config)
    parts = [window.assign(**{PART: WINDOW, ROW: range(len(window))}),
             refused.assign(**{PART: REFUSED, ROW: range(len(refused))}),
             pd.DataFrame({PART: [OUTSIDE] * outside, ROW: range(outside)})]
    frame = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(
        len(p) for p in parts) else READ_SCHEMA.empty_table().to_pandas()
    return frame.assign(**{FILE: number, SPLIT: split}).reindex(columns=READ_SCHEMA.names)


def read_tasks(files: list[tuple[str, str, int]], split_bytes: int
               ) -> list[tuple[str, str, int, int, int, int]]:
    """(path, format, file number, split number, start, end) per read task: one per file,
    or one per byte range of a JSONL file larger than `split_bytes` that can be split."""
    tasks = []
    for path, fmt, number in files:
        size = Path(path).stat().st_size
        if fmt == jsonl.NAME and size > split_bytes and jsonl.splittable(Path(path)):
            tasks += [(path, fmt, number, split, start, end) for split, (start, end)
                      in enumerate(byte_ranges(size, split_bytes))]
        else:
            tasks.append((path, fmt, number, 0, *WHOLE_FILE))
    return tasks


def extract_on_spark(spark: "SparkSession", config: ExtractConfig, lake: Lake,
                     s3_endpoint_url: str | None = None,
                     split_bytes: int = DEFAULT_SPLIT_BYTES) -> ExtractReport:
    """`extract` on Spark: the same rows land in the same raw and quarantine files."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    if config.source == LAKE_SOURCE:
        raise ConfigError("source=lake has nothing to extract: validate reads the raw zone")
    if config.start and config.end and config.start >= config.end:
        raise ConfigError(f"window start {config.start} is not before end {config.end}")
    with local_source(config.source, s3_endpoint_url) as root:
        fingerprint = config.source_sha256 or source_sha256(root)
        # layouts are told from the headers here, before any task runs: a source no reader
        # knows fails the step with the pandas engine's error
        files = [(str(path), config.format or fmt or detect_format(path), number)
                 for number, (path, fmt) in enumerate(source_files(root))]
        tasks = read_tasks(files, split_bytes)
        listing = spark.createDataFrame(tasks, spark_schema(_FILES_SCHEMA)).repartition(
            max(1, len(tasks)))

        def read(batches):
            from recsys.core.data.spark.frames import from_pandas

            for batch in batches:
                for path, fmt, number, split, start, end in zip(
                        *(batch.column(i).to_pylist() for i in range(6))):
                    frame = read_one(path, fmt, number, config, split, (start, end))
                    yield from from_pandas(frame, READ_SCHEMA).to_batches(max_chunksize=50_000)

        rows = listing.mapInArrow(read, spark_schema(READ_SCHEMA)).persist(
            StorageLevel.DISK_ONLY)
        try:
            counts = {r[PART]: r["count"] for r in rows.groupBy(PART).count().collect()}
            window, duplicates = first_per_key(rows.filter(F.col(PART) == WINDOW), C.event_id,
                                               [FILE, SPLIT, ROW])
            written = append_by_date(window.select(*RAW_EVENT_COLUMNS), lake, RAW_ZONE,
                                     C.event_id, RAW_EVENT_SCHEMA)
            refused = rows.filter(F.col(PART) == REFUSED).select(*QUARANTINE_SCHEMA.names)
            reasons = _reason_counts(refused)
            quarantined = append_by_date(refused, lake, QUARANTINE_ZONE, C.quarantine_id,
                                         QUARANTINE_SCHEMA)
        finally:
            rows.unpersist()
    in_window = counts.get(WINDOW, 0)
    report = ExtractReport(
        source=config.source, source_sha256=fingerprint, format=config.format,
        window_start=config.start, window_end=config.end,
        rows_read=in_window + counts.get(OUTSIDE, 0) + counts.get(REFUSED, 0),
        rows_in_window=in_window, rows_outside_window=counts.get(OUTSIDE, 0),
        rows_written=written.written, rows_already_present=written.already_present,
        rows_duplicate_in_source=duplicates, rows_quarantined=counts.get(REFUSED, 0),
        quarantine_reasons=reasons, files_written=written.files + quarantined.files)
    log.info("extract (spark): %d read from %d files (%d read tasks), %d in window, %d new, "
             "%d already in the lake, %d duplicates in the source, %d quarantined",
             report.rows_read, len(files), len(tasks), report.rows_in_window, report.rows_written,
             report.rows_already_present, report.rows_duplicate_in_source,
             report.rows_quarantined)
    return report


def _reason_counts(refused) -> dict[str, int]:
    tallies = per_batch(refused, lambda f: pd.DataFrame({"tally": [json.dumps(
        reason_counts(f[C.reason]))]}), QUARANTINE_SCHEMA, _TALLY_SCHEMA).collect()
    total: dict[str, int] = {}
    for row in tallies:
        for code, count in json.loads(row["tally"]).items():
            total[code] = total.get(code, 0) + count
    return dict(sorted(total.items()))
