"""KFP wrapper of evaluate (never cached: the champion it compares with may have changed)."""
from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from recsys.components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def evaluate_op(processed: Input[Dataset], trained: Input[Model], tracking_uri: str,
                registered_model: str, policy: dict,
                evaluation: Output[Artifact] = None, metrics: Output[Metrics] = None):
    """Score candidates, the popularity baseline and the current champion on one holdout;
    the best candidate is the one with the highest primary metric of the gate's `policy`."""
    import json
    import os

    from recsys.components.evaluate.compare import evaluate_candidates
    from recsys.components.evaluate.sessions import holdout_events
    from recsys.core.data.lake import Lake
    from recsys.core.data.processed import read_processed
    from recsys.core.lifecycle.gate import GatePolicy
    from recsys.core.lifecycle.tracking import registry_call_bounds
    from recsys.core.models.storage import load_model
    from recsys.core.progress import configure_logging, publish_metrics

    configure_logging()
    data = read_processed(Lake(processed.path))
    with open(os.path.join(trained.path, "candidates.json")) as handle:
        index = json.load(handle)
    candidates = {name: {**info, "model": load_model(os.path.join(trained.path, name),
                                                     expected_sha256=info["sha256"])}
                  for name, info in index.items()}
    holdout_sessions = holdout_events(data)
    with registry_call_bounds():
        record = evaluate_candidates(candidates, data.holdout, data.train, tracking_uri,
                                     registered_model,
                                     GatePolicy.model_validate(policy).primary_metric,
                                     holdout_sessions=holdout_sessions)
    with open(evaluation.path, "w") as handle:
        json.dump(record.model_dump(mode="json"), handle, indent=2)
    publish_metrics(metrics, record.best_candidate.metrics)
