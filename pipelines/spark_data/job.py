"""The Spark data job: what a pipeline step runs in local mode and what a SparkApplication's
driver runs on a cluster (`python -m recsys.pipelines.spark_data.job --job '<json>'`).

It lands the window in the lake (raw, quarantine, clean), writes the processed snapshot and
the feature tables there, and writes its result (reports, snapshot key) to `result_key`.
"""
from __future__ import annotations

import argparse
import logging
import sys

from pydantic import BaseModel, ConfigDict, Field

from recsys.components.extract.extract import ExtractConfig
from recsys.components.extract.on_spark import extract_on_spark
from recsys.components.features.on_spark import write_feature_tables_on_spark
from recsys.components.preprocess.config import PreprocessConfig
from recsys.components.preprocess.on_spark import preprocess_window_on_spark
from recsys.components.validate.on_spark import validate_window_on_spark
from recsys.components.validate.rules import ValidationConfig
from recsys.core.data.event_store import parse_moment
from recsys.core.data.lake import Lake
from recsys.core.data.spark.session import spark_session
from recsys.core.progress import configure_logging, step
from recsys.core.settings import Settings

log = logging.getLogger(__name__)


class SparkDataJob(BaseModel):
    """The job's parameters: the pipeline's data parameters plus where to put the result."""

    model_config = ConfigDict(extra="forbid")

    source: str
    lake_uri: str
    result_key: str
    """Lake key of the job's result JSON (the submitting step reads it)."""
    source_format: str | None = None
    start: str | None = None
    end: str | None = None
    source_sha256: str | None = None
    s3_endpoint_url: str | None = None
    max_bad_ratio: float = ValidationConfig().max_bad_ratio
    holdout_days: float = PreprocessConfig().holdout_days
    lookback_days: float | None = PreprocessConfig().lookback_days
    half_life_days: float = Field(PreprocessConfig().popularity_half_life_days, gt=0)


def run_job(job: SparkDataJob, settings: Settings) -> dict:
    """Run the four steps on Spark; returns (and writes to the lake) the job's result."""
    lake = Lake(job.lake_uri, job.s3_endpoint_url)
    start, end = parse_moment(job.start), parse_moment(job.end)
    spark = spark_session(settings)
    with step("extract", engine="spark", source=job.source):
        extracted = extract_on_spark(spark, ExtractConfig(
            source=job.source, format=job.source_format, start=start, end=end,
            source_sha256=job.source_sha256), lake, job.s3_endpoint_url,
            split_bytes=settings.spark_split_mb * 2**20)
    with step("validate", engine="spark"):
        quality = validate_window_on_spark(spark, lake, ValidationConfig(
            max_bad_ratio=job.max_bad_ratio), start, end)
    with step("preprocess", engine="spark"):
        config = PreprocessConfig(holdout_days=job.holdout_days, lookback_days=job.lookback_days,
                                  popularity_half_life_days=job.half_life_days)
        key, processed = preprocess_window_on_spark(spark, lake, config, start, end)
    with step("feature tables", engine="spark"):
        tables = write_feature_tables_on_spark(spark, lake, processed, lake, key,
                                               job.half_life_days)
    result = {"extract": extracted.model_dump(mode="json", exclude={"files_written"}),
              "quality": quality.model_dump(mode="json"), "snapshot": key,
              "feature_tables": tables, "summary": processed.summary}
    lake.write_json(job.result_key, result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="recsys-spark-data", description=__doc__)
    parser.add_argument("--job", required=True, help="the SparkDataJob as JSON")
    args = parser.parse_args(argv)
    configure_logging()
    run_job(SparkDataJob.model_validate_json(args.job), Settings())
    return 0


if __name__ == "__main__":
    sys.exit(main())
