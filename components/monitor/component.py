"""KFP wrapper of the scheduled drift check (never cached: it reads the live lake)."""
from kfp import dsl
from kfp.dsl import Artifact, Metrics, Output

from recsys.components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def monitor_op(lake_uri: str, s3_endpoint_url: str, tracking_uri: str, state_dir: str,
               registered_model: str, current_days: float, drift_share: float,
               summary: Output[Artifact] = None,
               metrics: Output[Metrics] = None) -> bool:
    """Drift of the newest days against the champion's training data; True when detected."""
    import json

    from recsys.core.lifecycle.tracking import registry_call_bounds
    from recsys.core.progress import configure_logging, publish_metrics
    from recsys.core.settings import Settings
    from recsys.monitoring.config import DriftConfig
    from recsys.monitoring.monitor import monitor

    configure_logging()
    settings = Settings(state_dir=state_dir, lake_uri=lake_uri,
                        s3_endpoint_url=s3_endpoint_url or None,
                        mlflow_tracking_uri=tracking_uri,
                        registered_model_name=registered_model)
    with registry_call_bounds():
        result = monitor(settings, DriftConfig(drift_share=drift_share),
                         current_days=current_days)
    with open(summary.path, "w") as handle:
        json.dump(result, handle, indent=2, default=str)
    publish_metrics(metrics, {"drifted_share": result["drifted_share"],
                              "drifted_columns": result["drifted_columns"]})
    return bool(result["drift_detected"])
