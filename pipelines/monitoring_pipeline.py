"""The monitoring pipeline: a drift check, and the training pipeline under dsl.If when the
drift crosses the configured share. Wiring only."""
from kfp import compiler, dsl

from recsys.components.gate.component import drift_trigger_op
from recsys.components.monitor.component import monitor_op
from recsys.core.settings import DEFAULT_REGISTERED_MODEL
from recsys.monitoring.config import DriftConfig
from recsys.pipelines.cluster_identity import MONITORING_IDENTITY, as_identity, with_lake_store
from recsys.pipelines.lake_retention import lake_retention
from recsys.pipelines.outcome_reporting import outcome_reporter
from recsys.pipelines.task_resources import sized
from recsys.pipelines.training_pipeline import training_pipeline

PIPELINE_NAME = "recsys-monitoring"


@dsl.pipeline(name=PIPELINE_NAME,
              description="Daily drift check against the champion's training data; "
                          "retrains (and gates) when drift is detected. Applies the lake's "
                          "retention.")
def monitoring_pipeline(
    source: str,
    lake_uri: str,
    tracking_uri: str,
    state_dir: str = ".recsys",
    registered_model: str = DEFAULT_REGISTERED_MODEL,
    current_days: float = 1.0,
    drift_share: float = DriftConfig().drift_share,
    source_format: str = "",
    s3_endpoint_url: str = "",
    feast_profile: str = "local",
):
    # runs after the steps, failed ones too: the run's status reaches the Pushgateway
    with dsl.ExitHandler(outcome_reporter("monitoring")):
        check = monitor_op(lake_uri=lake_uri, s3_endpoint_url=s3_endpoint_url,
                           tracking_uri=tracking_uri, state_dir=state_dir,
                           registered_model=registered_model, current_days=current_days,
                           drift_share=drift_share)
        check.set_caching_options(False)
        # reads the registry, writes its own experiment
        with_lake_store(as_identity(sized(check), MONITORING_IDENTITY))
        lake_retention(lake_uri, s3_endpoint_url)  # beside the check, not after it
        with dsl.If(check.outputs["Output"] == True):  # noqa: E712 - a KFP condition, not Python
            trigger = drift_trigger_op(summary=check.outputs["summary"])
            sized(trigger).set_caching_options(False)
            training_pipeline(trigger=trigger.output, source=source, lake_uri=lake_uri,
                              tracking_uri=tracking_uri, state_dir=state_dir,
                              registered_model=registered_model, source_format=source_format,
                              s3_endpoint_url=s3_endpoint_url, feast_profile=feast_profile)


def compile_pipeline(path: str) -> str:
    compiler.Compiler().compile(monitoring_pipeline, path)
    return path


if __name__ == "__main__":
    compile_pipeline("build/monitoring_pipeline.yaml")
