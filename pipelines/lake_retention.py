"""The monitoring pipeline's retention step: the lake's expired date partitions deleted and
its size per zone pushed, every scheduled monitoring run (daily), beside the drift check and
independent of it (a failed check, or no champion yet, does not hold retention back).

On a cluster the step reads its policies from the optional ConfigMap `recsys-lake-retention`
(keys `raw_days`, `clean_days`, `quarantine_days`, `request_log_days`, `reports_days`; a
missing key or ConfigMap: that zone is kept forever) and the Pushgateway's address from
`recsys-pipeline-outcome` (key `pushgateway_url`), as the exit handler does."""
from __future__ import annotations

from kfp import kubernetes
from kfp.dsl import PipelineTask

from recsys.components.lake.component import lake_retention_op
from recsys.core.data.retention import ZONE_NAMES
from recsys.pipelines.cluster_identity import with_lake_store
from recsys.pipelines.outcome_reporting import OUTCOME_CONFIG_MAP
from recsys.pipelines.task_resources import sized

RETENTION_CONFIG_MAP = "recsys-lake-retention"
RETENTION_KEYS = {f"{zone}_days": f"RECSYS_RETENTION_{zone.upper()}_DAYS" for zone in ZONE_NAMES}
"""ConfigMap key -> the setting's environment variable."""


def lake_retention(lake_uri: str, s3_endpoint_url: str) -> PipelineTask:
    task = lake_retention_op(lake_uri=lake_uri, s3_endpoint_url=s3_endpoint_url)
    task.set_caching_options(False)  # it acts on the live lake and today's date
    with_lake_store(sized(task))
    kubernetes.use_config_map_as_env(
        task, config_map_name=OUTCOME_CONFIG_MAP,
        config_map_key_to_env={"pushgateway_url": "RECSYS_PUSHGATEWAY_URL"}, optional=True)
    return kubernetes.use_config_map_as_env(
        task, config_map_name=RETENTION_CONFIG_MAP, config_map_key_to_env=RETENTION_KEYS,
        optional=True)
