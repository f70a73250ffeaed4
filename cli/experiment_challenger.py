"""The challenger `recsys experiment simulate` puts against the champion.

Either the registry's `challenger` alias (when it names another version than the champion)
or a candidate trained now on the lake's window the way the pipeline's train step trains
one: with the window's sessions, so it carries session rules and a next-item session model
and both arms answer live sessions alike. Two kinds of candidate:

- another long-term model (item-kNN, or EASE when the champion is item-kNN) with the
  pipeline's default session model: an experiment between long-term models;
- with a session model named (`--session-model`), the champion's own long-term model and
  hyperparameters with that session model: an experiment between session models, in which
  known users' lists differ only by the session blend and anonymous visitors' lists only by
  the session model.
"""
from __future__ import annotations

import json

from recsys.components.train.train import TrainConfig
from recsys.core.errors import RecsysError

MODEL_TAG = "recsys.model"
"""The champion run's tag naming its long-term model (`log_trained` sets it)."""
HYPERPARAMETER_PREFIX = "model."
"""How `log_trained` names a hyperparameter among the run's params (`model.<name>`)."""


def challenger_config(champion_model: str | None, champion_params: dict[str, str],
                      session_model: str | None = None,
                      session_model_params: dict | None = None) -> TrainConfig:
    """What to train as the challenger: with `session_model`, the champion's long-term model
    (`champion_model`, its hyperparameters read back from the run's `champion_params`) with
    that session model; without, another long-term model with the default session model."""
    if session_model is None:
        other = "ease" if champion_model == "item_knn" else "item_knn"
        return TrainConfig(models={other: {}})
    if champion_model is None:
        raise RecsysError(f"the champion's run has no {MODEL_TAG} tag: its long-term model "
                          "is unknown, so no challenger can share it")
    return TrainConfig(models={champion_model: hyperparameters_of(champion_params)},
                       session_model=session_model,
                       session_model_params=session_model_params or {})


def hyperparameters_of(run_params: dict[str, str]) -> dict:
    """A run's `model.<name>` params as constructor arguments: MLflow keeps params as text,
    so numbers, booleans and None are read back from their text (`str(value)`)."""
    return {key.removeprefix(HYPERPARAMETER_PREFIX): _value_of(text)
            for key, text in run_params.items() if key.startswith(HYPERPARAMETER_PREFIX)}


def _value_of(text: str):
    words = {"True": True, "False": False, "None": None}
    if text in words:
        return words[text]
    try:
        return json.loads(text)
    except ValueError:
        return text


def train_challenger(processed, config: TrainConfig):
    """The challenger fitted on `processed` as the pipeline's train step fits a candidate:
    with the training window's sessions (session rules and session model) and the
    catalogue's newer items."""
    from recsys.components.train.train import (
        catalogue_metadata,
        train_models,
        training_sessions,
    )

    return train_models(processed.train, config, processed.item_features,
                        processed.user_features, training_sessions(processed),
                        catalogue_metadata(processed))[0]


def challenger_version(settings, session_model: str | None = None,
                       session_model_params: dict | None = None) -> str:
    """The registry's challenger when it names another version than the champion and no
    session model is asked for; otherwise a candidate trained now on the lake's clean events
    (`challenger_config`) and registered as challenger."""
    from recsys.components.preprocess.config import PreprocessConfig
    from recsys.components.preprocess.preprocess import preprocess_window
    from recsys.components.train.train import log_trained
    from recsys.core.data.lake import Lake
    from recsys.core.lifecycle.registry import aliases, register_candidate
    from recsys.core.lifecycle.tracking import client_for
    from recsys.core.progress import step

    client = client_for(settings.tracking_uri)
    name = settings.registered_model_name
    current = aliases(client, name)
    if "champion" not in current:
        raise RecsysError(f"{name} has no champion: run `make run` first")
    if session_model is None and current.get("challenger") not in (None, current["champion"]):
        return current["challenger"]
    champion_run_id = client.get_model_version(name, current["champion"]).run_id
    if champion_run_id is None:
        raise RecsysError(f"{name}'s champion v{current['champion']} records no training run")
    champion_run = client.get_run(champion_run_id)
    config = challenger_config(champion_run.data.tags.get(MODEL_TAG), champion_run.data.params,
                               session_model, session_model_params)
    model = next(iter(config.models))
    with step("train a challenger for the experiment", model=model,
              session_model=config.session_model):
        _, processed = preprocess_window(Lake(settings.lake, settings.s3_endpoint_url),
                                         PreprocessConfig())
        trained = train_challenger(processed, config)
        log_trained(trained, settings.tracking_uri, f"{name}-experiments",
                    {"rows": len(processed.train)})
        run_id, model_uri = trained.logged_run()
        return register_candidate(client, name, model_uri, run_id)


def session_scorers(settings, versions: dict[str, str]) -> dict[str, str]:
    """Label -> what answers a live session for that arm's registry version (`scorer_of`:
    `session_model:<name>`, `session_rules` or `none`)."""
    from recsys.core.lifecycle.pyfunc import load_recommender
    from recsys.core.lifecycle.tracking import use_tracking
    from recsys.core.models.session_scoring import scorer_of

    use_tracking(settings.tracking_uri)
    name = settings.registered_model_name
    return {label: scorer_of(load_recommender(f"models:/{name}/{version}"))
            for label, version in versions.items()}
