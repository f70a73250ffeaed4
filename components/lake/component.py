"""KFP wrapper of the lake's retention (a step of the monitoring pipeline, never cached)."""
from kfp import dsl
from kfp.dsl import Metrics, Output

from recsys.components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def lake_retention_op(lake_uri: str, s3_endpoint_url: str = "",
                      metrics: Output[Metrics] = None) -> str:
    """Delete the date partitions older than each zone's policy (RECSYS_RETENTION_*_DAYS),
    push the lake's size per zone to the Pushgateway (RECSYS_PUSHGATEWAY_URL); returns the
    report as JSON."""
    import json

    from recsys.components.lake.metrics import push_lake_report
    from recsys.core.data.lake import Lake
    from recsys.core.data.retention import policies_from_settings, retain
    from recsys.core.progress import configure_logging, publish_metrics
    from recsys.core.settings import load_settings

    configure_logging()
    settings = load_settings()
    report = retain(Lake(lake_uri, s3_endpoint_url or None), policies_from_settings(settings))
    push_lake_report(settings.pushgateway_url, report)
    publish_metrics(metrics, {
        **{f"deleted_partitions_{zone}": len(went["partitions"])
           for zone, went in report["zones"].items()},
        **{f"size_bytes_{zone}": sizes["bytes"] for zone, sizes in report["sizes"].items()}})
    return json.dumps(report)
