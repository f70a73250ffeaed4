"""validate on the spark engine: the same `judge`, tally and report as the pandas engine,
each batch judged in its own task, the clean rows and the quarantine appended per date
partition by `recsys.core.data.spark.lake_io`."""
from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from recsys.components.validate.rules import ValidationConfig
from recsys.components.validate.validate import (
    QualityReport,
    batch_tally,
    judge,
    merge_tallies,
    quality_report,
    raise_if_failed,
)
from recsys.core.data.columns import Columns
from recsys.core.data.event_store import (
    CLEAN_ZONE,
    QUARANTINE_SCHEMA,
    QUARANTINE_ZONE,
    RAW_ZONE,
    in_window,
    window_keys,
)
from recsys.core.data.lake import Lake
from recsys.core.data.quarantine import quarantine_rows
from recsys.core.data.schema import EVENT_COLUMNS, EVENT_SCHEMA, RAW_EVENT_SCHEMA
from recsys.core.data.spark.frames import aggregate_row, per_batch, with_fields
from recsys.core.data.spark.lake_io import append_by_date, read_files

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
C = Columns
JUDGED_SCHEMA = with_fields(RAW_EVENT_SCHEMA, pa.field(C.reason, pa.string()))
_TALLY_SCHEMA = pa.schema([pa.field("tally", pa.string())])


def validate_window_on_spark(spark: "SparkSession", lake: Lake, config: ValidationConfig,
                             start: datetime | None = None, end: datetime | None = None,
                             now: pd.Timestamp | None = None) -> QualityReport:
    """`validate_window` on Spark: same verdicts, report, gate and lake writes."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    raw = read_files(spark, lake, window_keys(lake, RAW_ZONE, start, end), RAW_EVENT_SCHEMA)
    judged = per_batch(raw, lambda f: judge(f[in_window(f, start, end)], config, now),
                       RAW_EVENT_SCHEMA, JUDGED_SCHEMA).persist(StorageLevel.DISK_ONLY)
    try:
        tallies = per_batch(judged, lambda f: pd.DataFrame({"tally": [json.dumps(
            batch_tally(f))]}), JUDGED_SCHEMA, _TALLY_SCHEMA).collect()
        clean = judged.filter(F.col(C.reason).isNull())
        distinct = aggregate_row(clean.agg(F.countDistinct(C.user_id).alias("users"),
                                           F.countDistinct(C.item_id).alias("items")))
        report = quality_report(merge_tallies([json.loads(r["tally"]) for r in tallies]),
                                config, users=distinct["users"], items=distinct["items"])
        raise_if_failed(report)
        append_by_date(clean.select(*EVENT_COLUMNS), lake, CLEAN_ZONE, C.event_id, EVENT_SCHEMA)
        quarantined = per_batch(judged.filter(F.col(C.reason).isNotNull()),
                                lambda f: quarantine_rows(f, f[C.reason]), JUDGED_SCHEMA,
                                QUARANTINE_SCHEMA)
        append_by_date(quarantined, lake, QUARANTINE_ZONE, C.quarantine_id, QUARANTINE_SCHEMA)
    finally:
        judged.unpersist()
    log.info("validate (spark): %d rows, %d clean, %d quarantined (%.2f%%)", report.rows_in,
             report.rows_clean, report.rows_quarantined, 100 * report.bad_ratio)
    return report
