"""KFP wrapper of train."""
from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from recsys.components.image import PROJECT_IMAGE


@dsl.component(base_image=PROJECT_IMAGE)
def train_op(processed: Input[Dataset], quality_report: Input[Dataset], tracking_uri: str,
             experiment: str, source_sha256: str, models: list, neighbours: int = 100,
             shrinkage: float = 10.0, model_params: dict = {},  # noqa: B006 - KFP literal
             search_trials: int = 0, search_budget_seconds: float = 60.0,
             session_model: str = "sequential_rules",
             session_model_params: dict = {},  # noqa: B006 - KFP literal
             trained: Output[Model] = None):
    """Fit the configured models (after a hyperparameter search per model when
    search_trials > 1, each trial a child run), each with its session rules and its
    next-item session model `session_model` ("" for none) learned from the training
    window's sessions, log each as an MLflow run, keep them as one Model folder."""
    import json
    import os

    from recsys.components.train.search import SearchConfig
    from recsys.components.train.train import (
        TrainConfig,
        catalogue_metadata,
        fingerprint_of,
        hyperparameters,
        log_trained,
        train_models,
        training_sessions,
    )
    from recsys.core.data.lake import Lake
    from recsys.core.data.processed import read_processed
    from recsys.core.lifecycle.tracking import registry_call_bounds
    from recsys.core.models.storage import save_model
    from recsys.core.progress import configure_logging

    configure_logging()
    data = read_processed(Lake(processed.path))
    config = TrainConfig(
        models=hyperparameters(models, neighbours, shrinkage, model_params),
        search=SearchConfig(trials=search_trials, budget_seconds=search_budget_seconds),
        session_model=session_model or None, session_model_params=session_model_params)
    with open(quality_report.path) as handle:
        report = json.load(handle)
    os.makedirs(trained.path, exist_ok=True)
    index = {}
    sessions = training_sessions(data)
    for fitted in train_models(data.train, config, data.item_features, data.user_features,
                               sessions, catalogue_metadata(data)):
        with registry_call_bounds():
            log_trained(fitted, tracking_uri, experiment,
                        fingerprint_of(data.summary, source_sha256), report)
        sha256 = save_model(fitted.model, os.path.join(trained.path, fitted.name))
        index[fitted.name] = {"run_id": fitted.run_id, "model_uri": fitted.model_uri,
                              "sha256": sha256}
    with open(os.path.join(trained.path, "candidates.json"), "w") as handle:
        json.dump(index, handle, indent=2)
