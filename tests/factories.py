"""Shared test factories: a trained model registered (and promoted) in a real MLflow store."""
from __future__ import annotations

import pandas as pd

from recsys.components.train.train import TrainConfig, log_trained, train_models
from recsys.core.lifecycle.gate import Decision
from recsys.core.lifecycle.registry import (
    CHAMPION,
    NO_CHAMPION,
    aliases,
    promote,
    register_with_decision,
)
from recsys.core.lifecycle.registry_lock import registry_lock
from recsys.core.lifecycle.tracking import client_for


def logged_model(tracking_uri: str, experiment: str, interactions: pd.DataFrame,
                 model: str = "item_knn", fingerprint: dict | None = None,
                 sessions: pd.DataFrame | None = None):
    """Fit `model` (with session rules from `sessions` when given) and log it as an MLflow
    pyfunc run; returns the fitted candidate (`model_uri`, `run_id`)."""
    fitted = train_models(interactions, TrainConfig(models={model: {}}), sessions=sessions)[0]
    log_trained(fitted, tracking_uri, experiment, fingerprint or {"rows": len(interactions)})
    return fitted


def register_trained(tracking_uri: str, name: str, interactions: pd.DataFrame,
                     model: str = "item_knn", fingerprint: dict | None = None,
                     champion: bool = True, sessions: pd.DataFrame | None = None,
                     lock_url: str | None = None) -> str:
    """Fit `model` on `interactions`, log it as an MLflow pyfunc, register it as a version of
    `name` approved by the gate and, with `champion`, give it the `champion` alias (under
    the alias lock at `lock_url`: a tracking server's PostgreSQL). Returns the version."""
    fitted = logged_model(tracking_uri, f"{name}-tests", interactions, model, fingerprint,
                          sessions)
    client = client_for(tracking_uri)
    current = aliases(client, name).get(CHAMPION, NO_CHAMPION)
    version = register_with_decision(client, name, fitted.model_uri, fitted.run_id,
                                     Decision(True, ["test"]), {}, {}, compared_with=current)
    if champion:
        promote(client, name, version, "test champion", compared_with=current,
                lock=registry_lock(tracking_uri, name, lock_url))
    return version


class WritesAMarker:
    """A pickle payload: unpickling it would create `path` (proof that code ran)."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def published_shop(state_dir, events: int, seed: int):
    """A generated shop ending today, preprocessed and its features published under
    `state_dir` (lake inside it). Returns (settings, processed data)."""
    from recsys.components.features.features import publish_features
    from recsys.components.preprocess.config import PreprocessConfig
    from recsys.components.preprocess.preprocess import preprocess
    from recsys.core.data.schema import conform_events
    from recsys.core.data.synthetic.config import ShopConfig
    from recsys.core.data.synthetic.generate import generate_shop
    from recsys.core.settings import Settings

    settings = Settings(state_dir=state_dir, lake_uri=str(state_dir / "lake"))
    end = pd.Timestamp.now(tz="UTC").floor("D")
    shop = generate_shop(ShopConfig(events=events, seed=seed, end=end.to_pydatetime())).events
    shop["parse_error"] = None
    processed = preprocess(conform_events(shop, "test", with_parse_error=False),
                           PreprocessConfig(holdout_days=3))
    publish_features(processed, settings)
    return settings, processed


def served_champion(state_dir, events: int, seed: int):
    """A state directory serving can start on: a generated shop's features published and an
    item_knn champion (with session rules, as the pipeline trains it) registered. Returns
    (processed data, champion version)."""
    from recsys.components.train.train import fingerprint_of, training_sessions

    settings, processed = published_shop(state_dir, events, seed)
    version = register_trained(settings.tracking_uri, settings.registered_model_name,
                               processed.train, "item_knn", fingerprint_of(processed.summary),
                               sessions=training_sessions(processed))
    return processed, version
