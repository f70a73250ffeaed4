"""The exit handler of the compiled pipelines: runs after every run, failed ones too, and
pushes the run's status to the Pushgateway (RECSYS_PUSHGATEWAY_URL; unset: nothing)."""
from kfp import dsl

from recsys.components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def report_outcome_op(pipeline: str, status: dsl.PipelineTaskFinalStatus) -> bool:
    """Push the run's final state (SUCCEEDED or anything else: failed); True when pushed."""
    from recsys.components.outcome.push import RunOutcome, push_run_outcome
    from recsys.core.progress import configure_logging
    from recsys.core.settings import load_settings

    configure_logging()
    run = RunOutcome(pipeline=pipeline, succeeded=status.state == "SUCCEEDED")
    return push_run_outcome(load_settings().pushgateway_url, run)
