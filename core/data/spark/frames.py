"""Run the steps' own pandas functions as Spark tasks, so each rule has one definition.

A step's function runs on a whole frame under the pandas engine. Under Spark it runs
either on every Arrow batch of a partition (`per_batch`: row-local rules) or on every
group of a key (`per_key`: rules that look at one user's, item's or category's rows at
once); everything that needs the whole table at once (a maximum, a global mean) is a
Spark aggregate handed to the function as a plain value. Frames cross the boundary as
Arrow: the pandas side sees the dtypes the pandas engine sees (UTC timestamps in ms).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow as pa

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row
    from pyspark.sql.types import DataType, StructType

PandasFn = Callable[[pd.DataFrame], pd.DataFrame]
PANDAS_TIMESTAMP = pa.timestamp("ms", tz="UTC")
SPARK_TIMESTAMP = pa.timestamp("us", tz="UTC")
BATCH_ROWS = 50_000


def spark_type(arrow_type: pa.DataType) -> "DataType":
    """The Spark SQL type of an Arrow type of the project's tables."""
    from pyspark.sql import types as T

    if pa.types.is_timestamp(arrow_type):
        return T.TimestampType()
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return T.StringType()
    if pa.types.is_floating(arrow_type):
        return T.DoubleType()
    if pa.types.is_integer(arrow_type):
        return T.LongType()
    if pa.types.is_boolean(arrow_type):
        return T.BooleanType()
    if pa.types.is_list(arrow_type):
        return T.ArrayType(spark_type(arrow_type.value_type))
    raise TypeError(f"no Spark type for Arrow type {arrow_type}")


def spark_schema(schema: pa.Schema) -> "StructType":
    from pyspark.sql import types as T

    return T.StructType([T.StructField(f.name, spark_type(f.type), True) for f in schema])


def _spark_arrow_type(arrow_type: pa.DataType) -> pa.DataType:
    if pa.types.is_timestamp(arrow_type):
        return SPARK_TIMESTAMP
    if pa.types.is_floating(arrow_type):
        return pa.float64()
    if pa.types.is_integer(arrow_type):
        return pa.int64()
    if pa.types.is_large_string(arrow_type):
        return pa.string()
    if pa.types.is_list(arrow_type):
        return pa.list_(_spark_arrow_type(arrow_type.value_type))
    return arrow_type


def spark_arrow_schema(schema: pa.Schema) -> pa.Schema:
    """`schema` as Spark hands it to and expects it from Python tasks."""
    return pa.schema([pa.field(f.name, _spark_arrow_type(f.type)) for f in schema])


def to_pandas(data: pa.Table | pa.RecordBatch, schema: pa.Schema) -> pd.DataFrame:
    """A Spark Arrow batch as the pandas engine would hold it: `schema`'s columns and
    types, timestamps as UTC milliseconds."""
    table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
    arrays = [table.column(f.name).cast(
        PANDAS_TIMESTAMP if pa.types.is_timestamp(f.type) else f.type, safe=False)
        for f in schema]
    target = pa.schema([pa.field(f.name, PANDAS_TIMESTAMP if pa.types.is_timestamp(f.type)
                                 else f.type) for f in schema])
    return pa.Table.from_arrays(arrays, schema=target).to_pandas()


def from_pandas(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """A pandas result as the Arrow table Spark expects for `schema`."""
    table = pa.Table.from_pandas(frame.reindex(columns=schema.names), preserve_index=False)
    target = spark_arrow_schema(schema)
    arrays = [table.column(f.name).cast(f.type, safe=False) for f in target]
    return pa.Table.from_arrays(arrays, schema=target)


def per_batch(frame: "DataFrame", fn: PandasFn, in_schema: pa.Schema,
              out_schema: pa.Schema) -> "DataFrame":
    """`fn` on every Arrow batch of every partition: for rules that look at one row at a
    time (the result is the same however the rows are cut)."""

    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows:
                out = fn(to_pandas(batch, in_schema))
                if len(out):
                    yield from from_pandas(out, out_schema).to_batches()

    return frame.mapInArrow(run, spark_schema(out_schema))


def per_key(frame: "DataFrame", keys: list[str], fn: PandasFn, in_schema: pa.Schema,
            out_schema: pa.Schema) -> "DataFrame":
    """`fn` on whole hash partitions of `keys`: every row of a key value is in one partition,
    so for rules that group by that key (their result on the whole frame is the union of
    their results on the groups) the result is the pandas engine's. One call a partition,
    not one a key: a pandas call costs milliseconds, and a shop has millions of users.
    A task holds its partition (1/`spark.sql.shuffle.partitions` of the rows) in memory."""
    setting = frame.sparkSession.conf.get("spark.sql.shuffle.partitions")
    if setting is None:  # cannot happen: Spark defines it (default 200)
        raise ValueError("spark.sql.shuffle.partitions is not set")
    partitions = int(setting)

    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        collected = [b for b in batches if b.num_rows]
        if collected:
            out = fn(to_pandas(pa.Table.from_batches(collected), in_schema))
            if len(out):
                yield from from_pandas(out, out_schema).to_batches(max_chunksize=BATCH_ROWS)

    return frame.repartition(partitions, *keys).mapInArrow(run, spark_schema(out_schema))


def aggregate_row(frame: "DataFrame") -> "Row":
    """The one row of a global aggregate (`frame.agg(...)`, no grouping)."""
    row = frame.first()
    if row is None:  # cannot happen: an aggregate without groups has exactly one row
        raise ValueError("a global aggregate returned no row")
    return row


def collect(frame: "DataFrame", schema: pa.Schema) -> pd.DataFrame:
    """A (small) Spark result in the driver, as the pandas engine would hold it."""
    table = frame.select(*schema.names).toArrow()
    return to_pandas(table, schema)


def with_fields(schema: pa.Schema, *fields: pa.Field) -> pa.Schema:
    """`schema` plus `fields` (replacing same-named ones), metadata dropped."""
    names = {f.name for f in fields}
    return pa.schema([f for f in schema if f.name not in names] + list(fields))
