"""The lake under the spark engine: tasks read and write it through `recsys.core.data.lake`,
in the layout of `recsys.core.data.event_store` (one definition of the layout and of the
idempotent append), on a local folder or `s3://` alike."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

from recsys.core.data.columns import Columns
from recsys.core.data.event_store import (
    AppendResult,
    append_partitioned,
    event_dates,
    read_event_files,
)
from recsys.core.data.lake import Lake
from recsys.core.data.spark.frames import (
    per_batch,
    per_key,
    spark_arrow_schema,
    spark_schema,
    with_fields,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

C = Columns
_APPEND_RESULT = pa.schema([pa.field("written", pa.int64()),
                            pa.field("already_present", pa.int64()),
                            pa.field("duplicates_in_batch", pa.int64()),
                            pa.field("files", pa.string())])


def read_files(spark: "SparkSession", lake: Lake, keys: list[str], schema: pa.Schema,
               parallelism: int | None = None) -> "DataFrame":
    """The Parquet files `keys` of the lake as one DataFrame of `schema`, each file read
    by a task (read as `schema`: older schema versions get their missing columns null). A
    file that cannot be decoded is set aside in the corrupt zone, as the pandas engine does."""
    uri, endpoint = lake.uri, lake.s3_endpoint_url
    out_schema = spark_arrow_schema(schema)
    tasks = max(1, min(len(keys), parallelism or spark.sparkContext.defaultParallelism * 4))
    listing = spark.createDataFrame([(k,) for k in keys], "key string").repartition(tasks) \
        if keys else spark.createDataFrame([], "key string")

    def run(batches):
        task_lake = Lake(uri, endpoint)
        for batch in batches:
            for key in batch.column("key").to_pylist():
                table = read_event_files(task_lake, [key], schema)
                arrays = [table.column(f.name).cast(f.type) for f in out_schema]
                yield from pa.Table.from_arrays(arrays, schema=out_schema).to_batches(
                    max_chunksize=50_000)

    return listing.mapInArrow(run, spark_schema(schema))


def append_by_date(frame: "DataFrame", lake: Lake, zone: str, key: str,
                   schema: pa.Schema) -> AppendResult:
    """`append_partitioned` on rows hash-partitioned by date: a date's rows are all in one
    task (tasks never share a date partition, so they never race on its files). The caller
    removes duplicate keys across dates first (`first_per_key`)."""
    uri, endpoint = lake.uri, lake.s3_endpoint_url
    dated_schema = with_fields(schema, pa.field(C.event_date, pa.string()))
    dated = per_batch(frame, lambda f: f.assign(**{C.event_date: event_dates(f)}), schema,
                      dated_schema)

    def run(part: pd.DataFrame) -> pd.DataFrame:
        result = append_partitioned(Lake(uri, endpoint), zone, part[list(schema.names)], key,
                                    schema)
        return pd.DataFrame({"written": [result.written],
                             "already_present": [result.already_present],
                             "duplicates_in_batch": [result.duplicates_in_batch],
                             "files": ["\n".join(result.files)]})

    rows = per_key(dated, [C.event_date], run, dated_schema, _APPEND_RESULT).collect()
    result = AppendResult()
    for row in rows:
        result.written += row["written"]
        result.already_present += row["already_present"]
        result.duplicates_in_batch += row["duplicates_in_batch"]
        result.files.extend(f for f in row["files"].split("\n") if f)
    result.files.sort()
    return result


def first_per_key(frame: "DataFrame", key: str, order: list[str]) -> tuple["DataFrame", int]:
    """Keep the first row of each `key` by `order` (what `drop_duplicates(keep='first')`
    keeps in the pandas engine's row order); returns the rows and how many were dropped."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ranked = frame.withColumn("_nth", F.row_number().over(
        Window.partitionBy(key).orderBy(*order)))
    kept = ranked.filter(F.col("_nth") == 1).drop("_nth")
    return kept, ranked.filter(F.col("_nth") > 1).count()
