"""KFP wrapper of the spark engine's data step (extract, validate, preprocess and the
feature tables in one Spark job)."""
from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from recsys.components.image import SPARK_IMAGE


@dsl.component(base_image=SPARK_IMAGE)
def spark_data_op(source: str, lake_uri: str, source_format: str, start: str, end: str,
                  s3_endpoint_url: str, source_sha256: str, max_bad_ratio: float,
                  holdout_days: float, lookback_days: float, spark_submit: str,
                  spark_namespace: str, spark_image: str,
                  processed: Output[Dataset] = None, quality_report: Output[Dataset] = None,
                  metrics: Output[Metrics] = None) -> str:
    """Spark in local mode here (`spark_submit=local`), or a SparkApplication on the
    cluster (`kubernetes`); emits the processed snapshot and the quality report. Returns the
    source hash."""
    import json

    from recsys.core.progress import configure_logging, publish_metrics
    from recsys.core.settings import Settings
    from recsys.pipelines.spark_data.application import SparkClusterConfig
    from recsys.pipelines.spark_data.job import SparkDataJob
    from recsys.pipelines.spark_data.step import result_key, run_data_step

    configure_logging()
    job = SparkDataJob(source=source, lake_uri=lake_uri, result_key=result_key(),
                       source_format=source_format or None, start=start or None,
                       end=end or None, source_sha256=source_sha256 or None,
                       s3_endpoint_url=s3_endpoint_url or None, max_bad_ratio=max_bad_ratio,
                       holdout_days=holdout_days, lookback_days=lookback_days)
    cluster = SparkClusterConfig(namespace=spark_namespace, image=spark_image) \
        if spark_submit == "kubernetes" else None
    result = run_data_step(job, Settings(), spark_submit, processed.path, cluster)
    processed.metadata.update({k: v for k, v in result["summary"].items() if k != "weights"})
    with open(quality_report.path, "w") as handle:
        json.dump(result["quality"], handle, indent=2)
    publish_metrics(metrics, {name: result["quality"][name] for name in (
        "rows_in", "rows_clean", "rows_quarantined", "bad_ratio")})
    return result["extract"]["source_sha256"]
