"""The pipeline step of the spark engine: run the data job (Spark in local mode in this
process, or a SparkApplication on the cluster), then hand its processed snapshot on as the
step's Dataset, like the pandas engine's preprocess step."""
from __future__ import annotations

import logging
import time
import uuid

from recsys.core.data.lake import Lake
from recsys.core.data.processed import FEATURE_TABLES_FILE
from recsys.core.settings import Settings
from recsys.pipelines.spark_data.application import (
    SparkClusterConfig,
    application_name,
    in_cluster_api_client,
    spark_application,
    submit_and_wait,
)
from recsys.pipelines.spark_data.job import SparkDataJob, run_job

log = logging.getLogger(__name__)
SUBMIT_MODES = ("local", "kubernetes")
RESULTS_PREFIX = "jobs/spark_data"


def result_key() -> str:
    """A fresh lake key for one run's job result."""
    return f"{RESULTS_PREFIX}/{uuid.uuid4().hex}.json"


def run_data_step(job: SparkDataJob, settings: Settings, submit: str, processed_dir: str,
                  cluster: SparkClusterConfig | None = None) -> dict:
    """Run the job as `submit` says; copy its snapshot to `processed_dir`; return its result."""
    lake = Lake(job.lake_uri, job.s3_endpoint_url)
    if submit == "kubernetes":
        if cluster is None:
            raise ValueError("a kubernetes submission needs a SparkClusterConfig")
        manifest = spark_application(application_name(job, time.time()), job, cluster)
        submit_and_wait(in_cluster_api_client(), manifest)
        result = lake.read_json(job.result_key)
    elif submit == "local":
        result = run_job(job, settings)
    else:
        raise ValueError(f"unknown spark submission {submit!r}; allowed: {SUBMIT_MODES}")
    handed_on = Lake(processed_dir)
    copied = copy_prefix(lake, result["snapshot"], handed_on)
    handed_on.write_json(FEATURE_TABLES_FILE, result["feature_tables"])
    log.info("spark data step: snapshot %s (%d files) handed on", result["snapshot"], copied)
    return result


def copy_prefix(source: Lake, prefix: str, target: Lake) -> int:
    """Copy every object below `prefix` of `source` to the same relative keys of `target`."""
    base = prefix.rstrip("/") + "/"
    keys = source.list(base)
    for key in keys:
        target.write_bytes(key[len(base):], source.read_bytes(key))
    return len(keys)
