"""Hyperparameter search: trials drawn from the space, best refitted, trials as child runs."""
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from recsys.components.train.search import SearchConfig, candidate_params
from recsys.components.train.train import TrainConfig, hyperparameters, log_trained, train_models
from recsys.core.errors import ConfigError


@pytest.fixture
def interactions():
    rng = np.random.default_rng(0)
    users = np.repeat([f"u{n}" for n in range(60)], 8)
    group = np.repeat(np.arange(60) % 3, 8)
    items = [f"g{g}-i{rng.integers(0, 12)}" for g in group]
    frame = pd.DataFrame({"user_id": users, "item_id": items, "weight": 1.0})
    frame = frame.drop_duplicates(["user_id", "item_id"]).reset_index(drop=True)
    frame["timestamp"] = pd.Timestamp("2026-10-01", tz="UTC") + pd.to_timedelta(
        rng.permutation(len(frame)), unit="min")
    return frame


def test_candidates_start_with_the_configured_parameters_and_are_distinct():
    trials = candidate_params("item_knn", {"neighbours": 100, "shrinkage": 10.0}, 5, seed=1)
    assert trials[0] == {"neighbours": 100, "shrinkage": 10.0}
    assert len(trials) == 5 and len({repr(sorted(t.items())) for t in trials}) == 5
    assert candidate_params("popularity", {}, 5, seed=1) == [{}]  # nothing to search


def test_search_refits_the_best_and_logs_each_trial_as_a_child_run(interactions, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = TrainConfig(models={"item_knn": {"neighbours": 5, "shrinkage": 0.0}},
                         search=SearchConfig(trials=4, budget_seconds=60))
    fitted = train_models(interactions, config)[0]
    trials = fitted.search.trials
    assert len(trials) == 4 and trials[0].params == {"neighbours": 5, "shrinkage": 0.0}
    best = max(trials, key=lambda t: t.metrics["ndcg_at_10"])
    assert fitted.params == best.params == fitted.search.best_params
    assert (fitted.model.neighbours, fitted.model.shrinkage) == (best.params["neighbours"],
                                                                 best.params["shrinkage"])
    log_trained(fitted, uri, "search-test", {"rows": len(interactions)})
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("search-test")
    children = client.search_runs([experiment.experiment_id],
                                  f"tags.mlflow.parentRunId = '{fitted.run_id}'")
    assert len(children) == 4
    scores = sorted(run.data.metrics["validation_ndcg_at_10"] for run in children)
    assert scores == pytest.approx(sorted(t.metrics["ndcg_at_10"] for t in trials))
    assert sum(run.data.tags["search.best"] == "true" for run in children) >= 1
    mlflow.set_tracking_uri("")


def test_search_stops_at_the_budget(interactions):
    config = TrainConfig(models={"item_knn": {}}, search=SearchConfig(trials=20,
                                                                      budget_seconds=1e-9))
    assert len(train_models(interactions, config)[0].search.trials) == 1


def test_model_params_must_name_trained_models():
    assert hyperparameters(["item_knn", "ease"], 50, 5.0, {"ease": {"l2": 10.0}}) == {
        "item_knn": {"neighbours": 50, "shrinkage": 5.0}, "ease": {"l2": 10.0}}
    with pytest.raises(ConfigError, match="not trained"):
        hyperparameters(["item_knn"], 50, 5.0, {"svd": {}})
