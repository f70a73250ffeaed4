"""KFP wrapper of validate."""
from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from recsys.components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def validate_op(events: Input[Dataset], lake_uri: str, max_bad_ratio: float,
                s3_endpoint_url: str = "", clean: Output[Dataset] = None,
                quality_report: Output[Dataset] = None, metrics: Output[Metrics] = None):
    """Quarantine bad rows in the lake, pass clean rows on, fail above the bad-row threshold."""
    import pandas as pd

    from recsys.components.validate.rules import ValidationConfig
    from recsys.components.validate.validate import publish_result, raise_if_failed, validate_events
    from recsys.core.data.lake import Lake
    from recsys.core.progress import configure_logging, publish_metrics

    configure_logging()
    result = validate_events(pd.read_parquet(events.path),
                             ValidationConfig(max_bad_ratio=max_bad_ratio))
    raise_if_failed(result.report)
    publish_result(Lake(lake_uri, s3_endpoint_url or None), result)
    result.clean.to_parquet(clean.path, index=False)
    with open(quality_report.path, "w") as handle:
        handle.write(result.report.model_dump_json(indent=2))
    publish_metrics(metrics, {name: getattr(result.report, name) for name in (
        "rows_in", "rows_clean", "rows_quarantined", "bad_ratio")})
