"""Each compiled pipeline's exit handler: a task that reports the run's outcome after the
steps, failed runs included (`dsl.ExitHandler`). On a cluster it reads the Pushgateway's
address from the ConfigMap `recsys-pipeline-outcome` (key `pushgateway_url`, optional: no
ConfigMap, nothing pushed); under kfp.local the runner reports instead (with step
durations and the gate's outcome), see pipelines/local_runner.py."""
from __future__ import annotations

from kfp import kubernetes
from kfp.dsl import PipelineTask

from recsys.components.outcome.component import report_outcome_op
from recsys.pipelines.task_resources import sized

OUTCOME_CONFIG_MAP = "recsys-pipeline-outcome"


def outcome_reporter(pipeline: str) -> PipelineTask:
    task = report_outcome_op(pipeline=pipeline)
    task.set_caching_options(False)
    sized(task)
    return kubernetes.use_config_map_as_env(
        task, config_map_name=OUTCOME_CONFIG_MAP,
        config_map_key_to_env={"pushgateway_url": "RECSYS_PUSHGATEWAY_URL"}, optional=True)
