"""The champion hot swap, on a real MLflow store with real pyfunc models."""
import pandas as pd
import pytest

from recsys.core.errors import NotFoundError
from recsys.core.lifecycle.registry import promote
from recsys.core.lifecycle.registry_lock import registry_lock
from recsys.core.lifecycle.tracking import client_for
from recsys.serving.model_source import ModelSource
from tests.factories import register_trained
from tests.serving.conftest import ROWS


def test_refresh_swaps_to_a_newly_promoted_champion(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    source = ModelSource(uri, "recs")
    with pytest.raises(NotFoundError, match="no 'champion' yet"):
        source.load()
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    client = client_for(uri)
    versions = [register_trained(uri, "recs", frame, "popularity")]
    first = source.load()
    assert first.version == versions[0] and first.recommender.name == "popularity"
    assert source.refresh() is False  # nothing moved
    versions.append(register_trained(uri, "recs", frame, "item_knn", champion=False))
    assert source.refresh() is False  # registered, not yet champion
    promote(client, "recs", versions[1], "second", compared_with=versions[0],
            lock=registry_lock(uri, "recs"))
    held = source.current  # a request in flight keeps its model
    assert source.refresh() is True
    assert source.current.version == versions[1]
    assert source.current.recommender.name == "item_knn"
    assert held.recommender.name == "popularity"


def test_a_champion_that_loads_but_cannot_score_is_never_served(tmp_path):
    import numpy as np

    from recsys.components.train.train import TrainConfig, log_trained, train_models
    from recsys.core.lifecycle.gate import Decision
    from recsys.core.lifecycle.registry import register_with_decision
    from recsys.serving.model_source import ModelUnhealthy

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    good = register_trained(uri, "recs", frame, "popularity")
    running = ModelSource(uri, "recs")
    assert running.load().version == good

    broken = train_models(frame, TrainConfig(models={"popularity": {}}))[0]
    broken.model.popularity[:] = np.nan  # loads fine, scores nothing
    log_trained(broken, uri, "broken", {"rows": len(frame)})
    client = client_for(uri)
    bad = register_with_decision(client, "recs", broken.model_uri, broken.run_id,
                                 Decision(True, ["test"]), {}, {}, compared_with=good)
    promote(client, "recs", bad, "looked better", compared_with=good,
            lock=registry_lock(uri, "recs"))

    with pytest.raises(ModelUnhealthy, match="no finite scores"):
        running.refresh()  # the hot swap is refused ...
    assert running.current.version == good  # ... and the old model keeps serving
    assert running.refresh() is False  # the rejected version is not loaded again and again

    starting = ModelSource(uri, "recs")  # a new pod while the champion is broken
    loaded = starting.load()
    assert loaded.version == good
    assert loaded.fallback_reason.startswith(f"champion v{bad} unusable: smoke test failed")
    items, scores = loaded.recommender.top_items("u1", 2)
    assert len(items) == 2 and np.isfinite(scores).all()


def test_before_any_champion_the_baseline_serves_and_the_first_champion_replaces_it(tmp_path):
    from recsys.core.models.popularity import popularity_from_item_stats
    from recsys.serving.model_source import BASELINE_VERSION

    stats = pd.DataFrame({"item_id": ["a", "b", "c"], "popularity_score": [1.0, None, 3.0],
                          "category": ["x", "y", "x"]})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    source = ModelSource(uri, "recs", baseline=lambda: popularity_from_item_stats(stats))
    first = source.load()
    assert first.version == BASELINE_VERSION and "no 'champion' yet" in first.fallback_reason
    assert first.recommender.users.size == 0  # no known users: everyone is cold
    assert list(first.recommender.recommend(["u1"], 3)["item_id"]) == ["c", "a", "b"]

    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    version = register_trained(uri, "recs", frame, "item_knn")
    assert source.refresh() is True
    assert source.current.version == version and source.current.fallback_reason is None


def test_an_unreachable_registry_at_start_serves_the_baseline(tmp_path, monkeypatch):
    from recsys.core.models.popularity import popularity_from_item_stats

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    stats = pd.DataFrame({"item_id": ["a", "b"], "popularity_score": [1.0, 2.0]})
    source = ModelSource("http://127.0.0.1:9", "recs",
                         baseline=lambda: popularity_from_item_stats(stats))
    loaded = source.load()
    assert "RegistryUnavailable" in loaded.fallback_reason
    assert list(loaded.recommender.recommend(["u1"], 2)["item_id"]) == ["b", "a"]
    with pytest.raises(Exception, match="unavailable"):
        source.refresh()  # still down: the watcher logs it, the baseline keeps serving
    assert source.current is loaded


def test_registry_health_reaches_the_metrics_for_the_alerts(tmp_path):
    """Drift found on the champion, when monitoring last judged it, and when the newest
    version (promoted or not) was registered: read at each champion check, exported as
    gauges, absent while unknown."""
    import time

    from prometheus_client import generate_latest

    from recsys.core.lifecycle.registry import DRIFT_TAG, MONITORED_AT_TAG
    from recsys.serving.metrics import ServiceMetrics

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    client = client_for(uri)
    champion = register_trained(uri, "recs", frame, "popularity")
    source, metrics = ModelSource(uri, "recs"), ServiceMetrics()
    source.load()
    assert source.registry_health["drift_detected"] is None  # never monitored
    assert source.registry_health["monitored_at"] is None
    metrics.observe_registry(source.registry_health)
    text = generate_latest(metrics.registry).decode()
    assert "recsys_champion_drift_detected" not in text
    assert "recsys_champion_monitored_timestamp_seconds" not in text

    client.set_model_version_tag("recs", champion, DRIFT_TAG, "True")
    client.set_model_version_tag("recs", champion, MONITORED_AT_TAG, "1800000000")
    before = time.time()
    register_trained(uri, "recs", frame, "item_knn", champion=False)  # a run, not promoted
    assert source.refresh() is False
    health = source.registry_health
    assert health["drift_detected"] is True and health["monitored_at"] == 1800000000.0
    assert before - 5 <= health["newest_version_registered_at"] <= time.time() + 5
    metrics.observe_registry(health)
    text = generate_latest(metrics.registry).decode()
    assert "recsys_champion_drift_detected 1.0" in text
    assert "recsys_champion_monitored_timestamp_seconds 1.8e+09" in text


def test_a_swap_freezes_the_promoted_model_and_the_old_one_goes_without_a_collection(
        tmp_path):
    """After a swap the new model's objects are frozen (full collections no longer walk
    them); freezing leaks nothing, because the swapped-out model has no reference cycle:
    reference counting alone frees it (the collector is off while it goes)."""
    import gc
    import weakref

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    versions = [register_trained(uri, "recs", frame, "item_knn")]
    source = ModelSource(uri, "recs")
    source.load()
    versions.append(register_trained(uri, "recs", frame, "item_knn", champion=False))
    promote(client_for(uri), "recs", versions[1], "second", compared_with=versions[0],
            lock=registry_lock(uri, "recs"))
    old = weakref.ref(source.current.recommender)
    gc.collect()
    frozen = gc.get_freeze_count()
    try:
        gc.disable()
        assert source.refresh() is True
        assert gc.get_freeze_count() > frozen
        assert source.current.version == versions[1]
        assert old() is None  # freed by reference counting alone
    finally:
        gc.enable()
        gc.unfreeze()
