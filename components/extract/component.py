"""KFP wrapper of extract: parameters and artifact paths in, package call, artifacts out."""
from kfp import dsl
from kfp.dsl import Dataset, Metrics, Output

from recsys.components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def fingerprint_op(source: str, lake_uri: str, s3_endpoint_url: str,
                   source_sha256: str) -> str:
    """The source's fingerprint for extract's cache key (never cached itself): the caller's
    content hash when it gave one, else the listing of the source (or of the lake's raw
    zone for source=lake) with sizes and ETags/modification times."""
    if source_sha256:
        return source_sha256
    from recsys.components.extract.extract import fingerprint_source
    from recsys.core.data.lake import Lake

    endpoint = s3_endpoint_url or None
    return fingerprint_source(source, Lake(lake_uri, endpoint), endpoint)


@dsl.component(base_image=PROJECT_IMAGE)
def extract_op(source: str, lake_uri: str, source_format: str = "", start: str = "",
               end: str = "", s3_endpoint_url: str = "", source_sha256: str = "",
               events: Output[Dataset] = None, metrics: Output[Metrics] = None) -> str:
    """Land the window in the lake; emit its events as a Dataset. Returns the source hash.

    `source_sha256`, when the caller knows it, makes a changed file a new cache key."""
    from recsys.components.extract.extract import ExtractConfig, extract
    from recsys.core.data.event_store import parse_moment
    from recsys.core.data.lake import Lake
    from recsys.core.progress import configure_logging, publish_metrics

    configure_logging()
    config = ExtractConfig(source=source, format=source_format or None,
                           start=parse_moment(start), end=parse_moment(end),
                           source_sha256=source_sha256 or None)
    endpoint = s3_endpoint_url or None
    report, window = extract(config, Lake(lake_uri, endpoint), endpoint)
    window.to_parquet(events.path, index=False)
    events.metadata.update(report.model_dump(mode="json", exclude={"files_written"}))
    publish_metrics(metrics, {name: getattr(report, name) for name in (
        "rows_read", "rows_written", "rows_already_present", "rows_quarantined")})
    return report.source_sha256
