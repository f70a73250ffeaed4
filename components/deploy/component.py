"""KFP wrapper of the deploy step: after a promotion, roll the new champion out to the
cluster's serving resource, or move the champion back (never cached)."""
from kfp import dsl
from kfp.dsl import Artifact, Input

from recsys.components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def deploy_op(outcome: Input[Artifact], tracking_uri: str, registered_model: str,
              serving_target: str, serving_namespace: str, model_artifacts: str,
              s3_endpoint_url: str, rollout_timeout_seconds: float,
              registry_lock_url: str = "") -> str:
    """Export the promoted version (the gate's `outcome`) under `model_artifacts`, point
    `serving_target` (`seldon:<Model>` or `kserve:<InferenceService>` in
    `serving_namespace`) at it and wait until it is Ready; otherwise roll the champion back
    and fail. Returns the artifact's URI."""
    import json

    from recsys.components.deploy.deploy import DeployConfig, deploy_promoted
    from recsys.components.deploy.rollout import in_cluster_api_client
    from recsys.components.deploy.served_resource import parse_target
    from recsys.core.lifecycle.registry_lock import registry_lock
    from recsys.core.lifecycle.tracking import client_for, registry_call_bounds
    from recsys.core.progress import configure_logging
    from recsys.core.settings import load_settings

    configure_logging()
    with open(outcome.path) as handle:
        version = json.load(handle)["version"]
    config = DeployConfig(registered_model=registered_model, version=version,
                          target=parse_target(serving_target, serving_namespace),
                          artifacts=model_artifacts, s3_endpoint_url=s3_endpoint_url or None,
                          timeout_seconds=rollout_timeout_seconds)
    # on a cluster the lock URL (it holds credentials) comes from a Secret's env
    lock = registry_lock(tracking_uri, registered_model,
                         registry_lock_url or load_settings().registry_lock_url)
    with registry_call_bounds():
        served = deploy_promoted(config, client_for(tracking_uri), lock, in_cluster_api_client())
    return served["uri"]
