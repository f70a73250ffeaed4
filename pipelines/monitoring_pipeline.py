"""The monitoring pipeline: a drift check, and the training pipeline under dsl.If when the
drift crosses the configured share. Wiring only."""
from kfp import compiler, dsl

from recsys.components.gate.component import drift_trigger_op
from recsys.components.monitor.component import monitor_op
from recsys.pipelines.training_pipeline import training_pipeline

PIPELINE_NAME = "recsys-monitoring"


@dsl.pipeline(name=PIPELINE_NAME,
              description="Daily drift check against the champion's training data; "
                          "retrains (and gates) when drift is detected.")
def monitoring_pipeline(
    source: str,
    lake_uri: str,
    tracking_uri: str,
    state_dir: str = ".recsys",
    registered_model: str = "recsys-recommender",
    current_days: float = 1.0,
    drift_share: float = 0.25,
    source_format: str = "",
):
    check = monitor_op(lake_uri=lake_uri, tracking_uri=tracking_uri, state_dir=state_dir,
                       registered_model=registered_model, current_days=current_days,
                       drift_share=drift_share)
    check.set_caching_options(False)
    with dsl.If(check.outputs["Output"] == True):  # noqa: E712 - a KFP condition, not Python
        trigger = drift_trigger_op(summary=check.outputs["summary"])
        trigger.set_caching_options(False)
        training_pipeline(trigger=trigger.output, source=source, lake_uri=lake_uri,
                          tracking_uri=tracking_uri, state_dir=state_dir,
                          registered_model=registered_model,
                          source_format=source_format)


def compile_pipeline(path: str) -> str:
    compiler.Compiler().compile(monitoring_pipeline, path)
    return path


if __name__ == "__main__":
    compile_pipeline("build/monitoring_pipeline.yaml")
