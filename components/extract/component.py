"""KFP wrapper of extract: parameters and artifact paths in, package call, artifacts out."""
from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from components.common.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def extract_op(source: str, lake_uri: str, source_format: str = "", start: str = "",
               end: str = "", s3_endpoint_url: str = "", events: Output[Dataset] = None,
               metrics: Output[Metrics] = None) -> str:
    """Land the window in the lake; emit its events as a Dataset. Returns the source hash."""
    from components.common.event_store import parse_moment
    from components.common.lake import Lake
    from components.common.progress import configure_logging
    from components.extract.extract import ExtractConfig, extract

    configure_logging()
    config = ExtractConfig(source=source, format=source_format or None,
                           start=parse_moment(start), end=parse_moment(end))
    endpoint = s3_endpoint_url or None
    report, window = extract(config, Lake(lake_uri, endpoint), endpoint)
    window.to_parquet(events.path, index=False)
    events.metadata.update(report.model_dump(mode="json", exclude={"files_written"}))
    for name in ("rows_read", "rows_written", "rows_already_present", "rows_quarantined"):
        metrics.log_metric(name, getattr(report, name))
    return report.source_sha256
