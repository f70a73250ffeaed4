"""train: fit the configured models on the training interactions and log each as an MLflow
run with its parameters, the data fingerprint and a `pyfunc` model."""
from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass

import mlflow
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from recsys.components.train.search import SearchConfig, SearchResult, search
from recsys.core.data.columns import Columns
from recsys.core.data.entity_stats import item_features
from recsys.core.data.processed import Processed
from recsys.core.errors import ConfigError, NotFoundError
from recsys.core.lifecycle.pyfunc import log_recommender
from recsys.core.lifecycle.tracking import ensure_experiment, use_tracking
from recsys.core.models.base import Recommender
from recsys.core.models.new_items import attach_new_items
from recsys.core.models.session_blend import tune_session_blend
from recsys.core.models.session_rules import MAX_RULES, WINDOW, fit_session_rules
from recsys.core.models.session_scoring import DEFAULT_SESSION_MODEL, fit_session_model
from recsys.core.models.session_zoo import SESSION_MODELS
from recsys.core.models.zoo import MODELS, build_model
from recsys.core.progress import progress

log = logging.getLogger(__name__)
C = Columns


class TrainConfig(BaseModel):
    """Which models to train and their hyperparameters."""

    model_config = ConfigDict(extra="forbid")

    models: dict[str, dict] = Field(default_factory=lambda: {
        "popularity": {}, "item_knn": {"neighbours": 100, "shrinkage": 10.0}})
    """Model name -> constructor parameters."""
    search: SearchConfig = Field(default_factory=SearchConfig)
    """Hyperparameter search per model (off by default)."""
    session_window: int = Field(WINDOW, ge=1)
    """Session rules: how many steps ahead an item counts as following another."""
    session_max_rules: int = Field(MAX_RULES, ge=1)
    """Session rules kept per item (the strongest)."""
    session_model: str | None = DEFAULT_SESSION_MODEL
    """The next-item session model each model carries for live sessions
    (`core/models/session_scoring.py`; one of `SESSION_MODELS`), None for none (the
    session rules answer)."""
    session_model_params: dict = Field(default_factory=dict)
    """Its constructor parameters (its defaults are tuned on public session logs)."""

    @field_validator("session_model")
    @classmethod
    def _known_session_model(cls, name: str | None) -> str | None:
        if name is not None and name not in SESSION_MODELS:
            raise ValueError(f"unknown session model {name!r}; known: "
                             f"{', '.join(SESSION_MODELS)}")
        return name


@dataclass
class TrainedModel:
    name: str
    model: Recommender
    params: dict
    fit_seconds: float
    run_id: str | None = None
    model_uri: str | None = None
    search: SearchResult | None = None

    def logged_run(self) -> tuple[str, str]:
        """(run_id, model_uri) of the MLflow run `log_trained` logged the model in."""
        if self.run_id is None or self.model_uri is None:
            raise NotFoundError(f"{self.name} is not logged yet: log_trained logs it")
        return self.run_id, self.model_uri


def hyperparameters(models: list[str], neighbours: int, shrinkage: float,
                    model_params: dict | None = None) -> dict[str, dict]:
    """Constructor parameters per model name from the pipeline's parameters: the item-kNN
    shortcuts, then `model_params` (model name -> parameters) on top."""
    model_params = model_params or {}
    unknown = sorted(set(model_params) - set(models))
    if unknown:
        raise ConfigError(f"model_params names models that are not trained: {unknown}; "
                          f"trained models: {models}")
    known = {"item_knn": {"neighbours": neighbours, "shrinkage": shrinkage}}
    return {name: {**known.get(name, {}), **model_params.get(name, {})} for name in models}


def train_models(train: pd.DataFrame, config: TrainConfig,
                 item_features: pd.DataFrame | None = None,
                 user_features: pd.DataFrame | None = None,
                 sessions: pd.DataFrame | None = None,
                 new_item_metadata: pd.DataFrame | None = None) -> list[TrainedModel]:
    """Fit every configured model, after its hyperparameter search when one is configured
    (pure: no tracking). With `sessions` (the training window's events: session_id,
    item_id, timestamp; anonymous visitors' too), each model also carries session rules and
    the configured next-item session model over its catalogue, which serving uses for the
    live session. With `new_item_metadata` (item_id and
    metadata of the catalogue, newer items included), each model also carries the items it
    does not know, reachable by content (`new_items`)."""
    trained = []
    for name, params in progress(config.models.items(), desc="train", total=len(config.models)):
        found = None
        if config.search.trials > 1 and MODELS[name].search_space:
            found = search(name, params, train, config.search, item_features, user_features)
            params = found.best_params
        started = time.perf_counter()
        model = build_model(name, **params).fit(train, item_features, user_features)
        if sessions is not None:
            rules = fit_session_rules(model, sessions, config.session_window,
                                      config.session_max_rules)
            log.info("session rules for %s: %d over %d items", name, rules.nnz, rules.shape[0])
            if config.session_model is not None:
                fitted = fit_session_model(model, sessions, config.session_model,
                                           config.session_model_params)
                if fitted is not None:
                    log.info("session model for %s: %s %s", name, fitted.name,
                             fitted.params())
                    tune_session_blend(model, sessions, config.session_model,
                                       config.session_model_params)
        if new_item_metadata is not None:
            added = attach_new_items(model, new_item_metadata)
            log.info("%s: %d items newer than its training data, reachable by content", name,
                     added)
        seconds = time.perf_counter() - started
        log.info("trained %s %s in %.2fs", name, params, seconds)
        trained.append(TrainedModel(name, model, params, seconds, search=found))
    return trained


def log_trained(trained: TrainedModel, tracking_uri: str, experiment: str,
                fingerprint: dict, quality_report: dict | None = None) -> TrainedModel:
    """Log one trained model as an MLflow run: params, data fingerprint, pyfunc model."""
    use_tracking(tracking_uri)
    experiment_id = ensure_experiment(tracking_uri, experiment)
    with mlflow.start_run(experiment_id=experiment_id, run_name=trained.name) as run, \
            tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tags({"recsys.step": "train", "recsys.model": trained.name})
        mlflow.log_params({"model": trained.name, **{f"model.{k}": v for k, v in
                                                     trained.params.items()}})
        mlflow.log_params({f"data.{k}": v for k, v in fingerprint.items()})
        mlflow.log_metric("fit_seconds", trained.fit_seconds)
        if quality_report is not None:
            mlflow.log_dict(quality_report, "data_quality_report.json")
        if trained.search is not None:
            log_trials(trained.name, trained.search, experiment_id)
        mlflow.log_dict(fingerprint, "data_fingerprint.json")
        info = log_recommender(trained.model, tmp)
        trained.run_id, trained.model_uri = run.info.run_id, info.model_uri
    log.info("logged %s as run %s (%s)", trained.name, trained.run_id, trained.model_uri)
    return trained


def log_trials(name: str, result: SearchResult, experiment_id: str) -> None:
    """Each search trial as a child run of the active (model) run."""
    mlflow.log_params({"search.trials": len(result.trials)})
    for number, trial in enumerate(result.trials, start=1):
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"{name} trial {number}",
                              nested=True):
            mlflow.set_tags({"recsys.step": "search", "recsys.model": name,
                             "search.best": str(trial.params == result.best_params).lower()})
            mlflow.log_params({f"model.{k}": v for k, v in trial.params.items()})
            mlflow.log_metrics({**{f"validation_{k}": v for k, v in trial.metrics.items()},
                                "fit_seconds": trial.seconds})


def fingerprint_of(summary: dict, source_sha256: str | None = None) -> dict:
    """The data a model was trained on: window, row counts, content hashes."""
    keys = ("window_start", "window_end", "split_time", "train_start", "events_in",
            "train_interactions", "holdout_interactions", "train_users", "train_items",
            "events_sha256")
    out = {k: summary.get(k) for k in keys}
    if source_sha256:
        out["source_sha256"] = source_sha256
    return json.loads(json.dumps(out, default=str))


def training_sessions(processed: Processed) -> pd.DataFrame:
    """The sessions models learn their session rules from (before the split)."""
    return processed.session_events(after_split=False)


def catalogue_metadata(processed: Processed, half_life_days: float = 7.0) -> pd.DataFrame:
    """The metadata of every item of the processed window: the training items' feature
    table, then the items first seen after the split (their category, brand and price band
    from their own events; their interactions are not used)."""
    events = processed.events
    split = pd.Timestamp(processed.summary["split_time"])
    later = events[events[C.timestamp] >= split]
    known = processed.item_features
    if later.empty:
        return known
    newer = item_features(later, split, half_life_days)
    newer = newer[~newer[C.item_id].astype(str).isin(set(known[C.item_id].astype(str)))]
    columns = [c for c in (C.item_id, C.category, C.brand, "price_band") if c in known.columns]
    return pd.concat([known[columns], newer[columns]], ignore_index=True)
