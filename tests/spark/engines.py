"""Both engines over one source, each into a lake of its own, and what to compare."""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from recsys.components.extract.extract import ExtractConfig, extract
from recsys.components.extract.on_spark import DEFAULT_SPLIT_BYTES, extract_on_spark
from recsys.components.features.on_spark import write_feature_tables_on_spark
from recsys.components.features.tables import write_feature_tables
from recsys.components.preprocess.config import PreprocessConfig
from recsys.components.preprocess.on_spark import preprocess_window_on_spark
from recsys.components.preprocess.preprocess import preprocess_window
from recsys.components.validate.on_spark import validate_window_on_spark
from recsys.components.validate.rules import ValidationConfig
from recsys.components.validate.validate import validate_window
from recsys.core.data.event_store import (
    CLEAN_ZONE,
    QUARANTINE_SCHEMA,
    QUARANTINE_ZONE,
    RAW_ZONE,
    read_window,
)
from recsys.core.data.lake import Lake
from recsys.core.data.processed import TABLES, read_processed
from recsys.core.data.schema import EVENT_SCHEMA, RAW_EVENT_SCHEMA

ZONES = ((RAW_ZONE, RAW_EVENT_SCHEMA, "event_id"), (CLEAN_ZONE, EVENT_SCHEMA, "event_id"),
         (QUARANTINE_ZONE, QUARANTINE_SCHEMA, "quarantine_id"))


def run_pandas(source: str, lake: Lake, now: pd.Timestamp, validation: ValidationConfig,
               preprocess: PreprocessConfig, start: datetime | None = None) -> dict:
    extracted, _ = extract(ExtractConfig(source=source, start=start), lake)
    quality = validate_window(lake, validation, start, now=now).report
    key, _ = preprocess_window(lake, preprocess, start)
    processed = read_processed(lake, key)
    tables = write_feature_tables(lake, processed, preprocess.popularity_half_life_days)
    return {"extract": extracted, "quality": quality, "snapshot": key, "tables": tables}


def run_spark(spark, source: str, lake: Lake, now: pd.Timestamp,
              validation: ValidationConfig, preprocess: PreprocessConfig,
              start: datetime | None = None, split_bytes: int = DEFAULT_SPLIT_BYTES) -> dict:
    extracted = extract_on_spark(spark, ExtractConfig(source=source, start=start), lake,
                                 split_bytes=split_bytes)
    quality = validate_window_on_spark(spark, lake, validation, start, now=now)
    key, processed = preprocess_window_on_spark(spark, lake, preprocess, start)
    tables = write_feature_tables_on_spark(spark, lake, processed, lake, key,
                                           preprocess.popularity_half_life_days)
    return {"extract": extracted, "quality": quality, "snapshot": key, "tables": tables}


def reports(ran: dict) -> dict:
    """A run's extract and quality reports as the Spark job's result JSON holds them (a
    run here gives the report objects; a job elsewhere, in a container say, its JSON)."""
    return {name: ran[name] if isinstance(ran[name], dict) else
            ran[name].model_dump(mode="json", exclude={"files_written"} if name == "extract"
                                 else None)
            for name in ("extract", "quality")}


def assert_same_lakes(a: Lake, b: Lake, ran_a: dict, ran_b: dict) -> dict:
    """Every zone, the snapshot and the feature tables agree; returns row counts."""
    assert reports(ran_a) == reports(ran_b)
    assert ran_a["snapshot"] == ran_b["snapshot"]
    assert ran_a["tables"] == ran_b["tables"]
    counts = {}
    for zone, schema, key in ZONES:
        left, right = (read_window(lake, zone, schema).sort_values(key).reset_index(drop=True)
                       for lake in (a, b))
        pd.testing.assert_frame_equal(left, right)  # same rows, same reasons, exactly
        counts[zone] = len(left)
        assert sorted(a.list(zone)) == sorted(b.list(zone))  # the same files, by content
    left, right = read_processed(a, ran_a["snapshot"]), read_processed(b, ran_b["snapshot"])
    assert left.summary == right.summary
    for name in TABLES:
        assert_frames_close(getattr(left, name), getattr(right, name))
    for key in (k for keys in ran_a["tables"].values() for k in keys):
        assert_frames_close(a.read_table(key).to_pandas(), b.read_table(key).to_pandas())
    counts["train"] = len(left.train)
    return counts


def assert_frames_close(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """Equal rows; floats within 1e-9 relative (sums in another order), list cells as lists,
    timestamps compared as instants whatever their unit."""
    assert list(left.columns) == list(right.columns)
    left, right = left.copy(), right.copy()
    for column in left.columns:
        for frame in (left, right):
            values = frame[column]
            if isinstance(values.dtype, pd.DatetimeTZDtype):
                frame[column] = values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
            elif values.dtype == object and values.map(
                    lambda v: isinstance(v, (list, np.ndarray))).any():
                frame[column] = values.map(lambda v: list(v) if v is not None else None)
    pd.testing.assert_frame_equal(left, right, check_dtype=False, check_exact=False,
                                  rtol=1e-9)
