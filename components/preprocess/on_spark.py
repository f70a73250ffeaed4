"""preprocess on the spark engine: the pandas engine's functions, each run per key group
(user, item or category: the key it groups by) or per batch (row rules), the window-wide
values (last event time, mean rating) as Spark aggregates, and the same `assemble`.

The cleaned window's events are written by the tasks as ordered parts of the snapshot;
the interactions and the feature tables (one row per user-item pair, user or item) are
collected by the driver for the matrix, like the pandas engine."""
from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from recsys.components.preprocess.clean import (
    INTERACTIONS_SCHEMA,
    PRICE_FILL_KEYS,
    add_weights,
    aggregate_interactions,
    drop_near_duplicates,
    fill_price_by,
    fill_ratings,
    rating_events,
)
from recsys.components.preprocess.config import PreprocessConfig
from recsys.components.preprocess.preprocess import (
    assemble,
    in_holdout,
    in_train,
    itemless,
    raise_no_training_events,
    split_times,
)
from recsys.core.data.columns import Columns
from recsys.core.data.entity_stats import (
    ITEM_STATS_SCHEMA,
    USER_FEATURES_SCHEMA,
    item_stats,
    user_features,
    with_price_bands,
)
from recsys.core.data.event_store import CLEAN_ZONE, in_window, window_keys
from recsys.core.data.lake import Lake
from recsys.core.data.processed import (
    EVENTS_SCHEMA,
    PROCESSED_ZONE,
    Processed,
    snapshot_key,
    table_parts_key,
    write_processed,
)
from recsys.core.data.schema import EVENT_SCHEMA
from recsys.core.data.spark.frames import (
    SPARK_TIMESTAMP,
    aggregate_row,
    collect,
    per_batch,
    per_key,
    to_pandas,
)
from recsys.core.data.spark.lake_io import read_files
from recsys.core.errors import DataQualityError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
C = Columns
_HASH_SCHEMA = pa.schema([pa.field("row_hash", pa.int64())])


def preprocess_window_on_spark(spark: "SparkSession", lake: Lake, config: PreprocessConfig,
                               start: datetime | None = None,
                               end: datetime | None = None) -> tuple[str, Processed]:
    """`preprocess_window` on Spark. The returned snapshot's `events` is None: they are in
    the lake as parts (read_processed reads them)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    disk = StorageLevel.DISK_ONLY
    events = per_batch(read_files(spark, lake, window_keys(lake, CLEAN_ZONE, start, end),
                                  EVENT_SCHEMA),
                       lambda f: f[in_window(f, start, end)], EVENT_SCHEMA, EVENT_SCHEMA
                       ).persist(disk)
    events_in = events.count()
    if events_in == 0:
        raise DataQualityError("preprocess: no clean events in the window")
    with_items = per_batch(events, lambda f: f[~itemless(f)], EVENT_SCHEMA, EVENT_SCHEMA)
    seconds = config.dedup_seconds
    deduped = per_key(with_items, [C.user_id], lambda f: drop_near_duplicates(f, seconds),
                      EVENT_SCHEMA, EVENT_SCHEMA).persist(disk)
    with_items_count, deduped_count = with_items.count(), deduped.count()
    counts: dict = {"price_missing": _nulls(deduped, C.price)}
    filled, before = deduped, counts["price_missing"]
    for key, name in PRICE_FILL_KEYS.items():
        filled = per_key(filled, [key], partial(fill_price_by, key=key), EVENT_SCHEMA,
                         EVENT_SCHEMA).persist(disk)
        after = _nulls(filled, C.price)
        counts[name], before = before - after, after
    counts["price_unfilled"] = before
    rated = per_batch(filled, lambda f: f[rating_events(f)], EVENT_SCHEMA, EVENT_SCHEMA)
    mean, missing = aggregate_row(rated.agg(
        F.avg(C.rating), F.sum(F.col(C.rating).isNull().cast("long"))))
    mean = float("nan") if mean is None else mean  # no rating at all: nothing to fill from
    if missing:
        filled = per_key(filled, [C.item_id], lambda f: fill_ratings(f, mean)[0],
                         EVENT_SCHEMA, EVENT_SCHEMA).persist(disk)
        still = per_batch(filled, lambda f: f[rating_events(f)], EVENT_SCHEMA, EVENT_SCHEMA)
        missing -= _nulls(still, C.rating)
    counts["rating_filled"] = int(missing or 0)
    weights = config.weights
    weighted = per_batch(filled, lambda f: add_weights(f, weights), EVENT_SCHEMA,
                         EVENTS_SCHEMA).persist(disk)
    bounds = collect(weighted.agg(F.min(C.timestamp).alias("first"),
                                  F.max(C.timestamp).alias("last")),
                     pa.schema([pa.field("first", SPARK_TIMESTAMP),
                                pa.field("last", SPARK_TIMESTAMP)])).iloc[0]
    window_end, split, train_start = split_times(bounds["last"], config, end)
    train_events = per_batch(weighted, lambda f: f[in_train(f, split, train_start)],
                             EVENTS_SCHEMA, EVENTS_SCHEMA).persist(disk)
    holdout_events = per_batch(weighted, lambda f: f[in_holdout(f, split)], EVENTS_SCHEMA,
                               EVENTS_SCHEMA)
    train_count = train_events.count()
    if train_count == 0:
        raise_no_training_events(window_end, split, config)
    before_lookback = weighted.filter(F.col(C.timestamp) < train_start.to_pydatetime()).count() \
        if train_start is not None else 0
    counts = {
        "window_start": str(bounds["first"]),
        "events_in": events_in, "itemless_events": events_in - with_items_count,
        "near_duplicates_removed": with_items_count - deduped_count, **counts,
        "train_events": train_count, "holdout_events": holdout_events.count(),
        "events_before_lookback": before_lookback,
        "events_sha256": _events_sha256(events),
    }
    half_life = config.popularity_half_life_days
    processed = assemble(
        None, _interactions(train_events), _interactions(holdout_events),
        collect(per_key(train_events, [C.user_id], lambda f: user_features(f, split),
                        EVENTS_SCHEMA, USER_FEATURES_SCHEMA), USER_FEATURES_SCHEMA
                ).sort_values(C.user_id, kind="stable").reset_index(drop=True),
        with_price_bands(collect(per_key(
            train_events, [C.item_id], lambda f: item_stats(f, split, half_life),
            EVENTS_SCHEMA, ITEM_STATS_SCHEMA), ITEM_STATS_SCHEMA)),
        counts, config, window_end, split, train_start)
    key = snapshot_key(processed.summary)
    _write_parts(weighted.orderBy(C.timestamp, C.event_id), lake, key, "events",
                 EVENTS_SCHEMA)
    write_processed(processed, lake, key)
    lake.write_json(f"{PROCESSED_ZONE}/latest.json", {"snapshot": key})
    spark.catalog.clearCache()
    return key, processed


def _nulls(frame: "DataFrame", column: str) -> int:
    from pyspark.sql import functions as F

    return frame.filter(F.col(column).isNull()).count()


def _interactions(events: "DataFrame") -> pd.DataFrame:
    return collect(per_key(events, [C.user_id], aggregate_interactions, EVENTS_SCHEMA,
                           INTERACTIONS_SCHEMA), INTERACTIONS_SCHEMA).sort_values(
        [C.user_id, C.item_id], kind="stable").reset_index(drop=True)


def _events_sha256(events: "DataFrame") -> str:
    """`frame_sha256(events, [event_id])`: row hashes in tasks, sorted in the driver (8
    bytes an event)."""
    import hashlib

    def hashes(frame: pd.DataFrame) -> pd.DataFrame:
        values = pd.util.hash_pandas_object(frame[[C.event_id]], index=False).to_numpy()
        return pd.DataFrame({"row_hash": values.view(np.int64)})

    table = per_batch(events, hashes, EVENT_SCHEMA, _HASH_SCHEMA).toArrow()
    values = np.sort(table.column("row_hash").to_numpy().view(np.uint64))
    return hashlib.sha256(values.tobytes()).hexdigest()


def _write_parts(ordered: "DataFrame", lake: Lake, prefix: str, table: str,
                 schema: pa.Schema) -> None:
    """Each partition of a sorted DataFrame written by its task as part N (partition N
    holds the N-th range of the order), so reading the parts in order gives the order."""
    from pyspark import TaskContext

    uri, endpoint = lake.uri, lake.s3_endpoint_url

    def write(batches):
        frames = [to_pandas(batch, schema) for batch in batches if batch.num_rows]
        if frames:
            part = TaskContext.get().partitionId()
            frame = pd.concat(frames, ignore_index=True)
            Lake(uri, endpoint).write_table(table_parts_key(prefix, table, part),
                                            pa.Table.from_pandas(frame, preserve_index=False))
        yield pa.RecordBatch.from_pylist([], schema=_HASH_SCHEMA)

    ordered.mapInArrow(write, "row_hash long").count()
