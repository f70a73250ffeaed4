"""The challenger `experiment simulate` trains: with a session model named, the champion's
own long-term model and hyperparameters with that session model, fitted with the window's
sessions as the pipeline fits it; without, another long-term model."""
import pandas as pd
import pytest

from recsys.cli.experiment_challenger import (
    challenger_config,
    hyperparameters_of,
    train_challenger,
)
from recsys.core.errors import RecsysError
from recsys.core.models.session_rules import rules_of
from recsys.core.models.session_scoring import DEFAULT_SESSION_MODEL, scorer_of


def test_a_session_model_experiment_keeps_the_champion_s_long_term_model():
    champion_params = {"model": "item_knn", "model.neighbours": "40",
                       "model.shrinkage": "2.5", "data.rows": "1000"}
    config = challenger_config("item_knn", champion_params, "stan", {"neighbour_decay": 1.0})
    assert config.models == {"item_knn": {"neighbours": 40, "shrinkage": 2.5}}
    assert (config.session_model, config.session_model_params) == ("stan", {"neighbour_decay": 1.0})


def test_without_a_session_model_the_challenger_is_another_long_term_model():
    assert challenger_config("item_knn", {}).models == {"ease": {}}
    config = challenger_config("ease", {"model.l2": "100.0"})
    assert config.models == {"item_knn": {}}
    assert config.session_model == DEFAULT_SESSION_MODEL


def test_a_champion_without_a_model_tag_cannot_be_shared():
    with pytest.raises(RecsysError, match="recsys.model"):
        challenger_config(None, {}, "stan")


def test_hyperparameters_are_read_back_from_their_text():
    assert hyperparameters_of({"model": "x", "model.k": "5", "model.alpha": "0.5",
                               "model.dense": "True", "model.cap": "None",
                               "model.weighting": "bm25", "data.rows": "7"}) == {
        "k": 5, "alpha": 0.5, "dense": True, "cap": None, "weighting": "bm25"}


@pytest.fixture(scope="module")
def processed():
    from recsys.components.preprocess.config import PreprocessConfig
    from recsys.components.preprocess.preprocess import preprocess
    from recsys.core.data.schema import conform_events
    from recsys.core.data.synthetic.config import ShopConfig
    from recsys.core.data.synthetic.generate import generate_shop

    end = pd.Timestamp("2026-11-01", tz="UTC")
    events = generate_shop(ShopConfig(events=4000, seed=2, end=end.to_pydatetime())).events
    events["parse_error"] = None
    return preprocess(conform_events(events, "test", with_parse_error=False),
                      PreprocessConfig(holdout_days=3))


def test_the_challenger_is_trained_with_the_window_s_sessions(processed):
    config = challenger_config("item_knn", {"model.neighbours": "20"}, "stan")
    trained = train_challenger(processed, config)
    assert trained.name == "item_knn" and trained.params == {"neighbours": 20}
    assert scorer_of(trained.model) == "session_model:stan"
    assert rules_of(trained.model) is not None
    other = train_challenger(processed, challenger_config("item_knn", {}))
    assert other.name == "ease"
    assert scorer_of(other.model) == f"session_model:{DEFAULT_SESSION_MODEL}"


def test_session_model_params_are_a_json_object():
    from recsys.cli.experiment_simulation import session_model_params
    from recsys.core.errors import ConfigError

    assert session_model_params('{"k": 20, "sample": 500}') == {"k": 20, "sample": 500}
    assert session_model_params(None) == {}
    for text in ("[1, 2]", "{k: 20}"):
        with pytest.raises(ConfigError, match="JSON object"):
            session_model_params(text)


@pytest.mark.slow
def test_a_session_model_challenger_is_registered_beside_the_champion(tmp_path):
    from recsys.cli.experiment_challenger import challenger_version, session_scorers
    from recsys.components.preprocess.config import PreprocessConfig
    from recsys.components.preprocess.preprocess import preprocess
    from recsys.components.train.train import training_sessions
    from recsys.core.data.event_store import CLEAN_ZONE, append_partitioned
    from recsys.core.data.lake import Lake
    from recsys.core.data.schema import EVENT_SCHEMA, conform_events
    from recsys.core.data.synthetic.config import ShopConfig
    from recsys.core.data.synthetic.generate import generate_shop
    from recsys.core.lifecycle.registry import aliases
    from recsys.core.lifecycle.tracking import client_for
    from recsys.core.settings import Settings
    from tests.factories import register_trained

    settings = Settings(state_dir=tmp_path, lake_uri=str(tmp_path / "lake"))
    end = pd.Timestamp.now(tz="UTC").floor("D")
    events = generate_shop(ShopConfig(events=4000, seed=4, end=end.to_pydatetime())).events
    events["parse_error"] = None
    clean = conform_events(events, "test", with_parse_error=False)
    append_partitioned(Lake(settings.lake), CLEAN_ZONE, clean, "event_id", EVENT_SCHEMA)
    processed = preprocess(clean, PreprocessConfig())
    name = settings.registered_model_name
    champion = register_trained(settings.tracking_uri, name, processed.train, "item_knn",
                                sessions=training_sessions(processed))

    version = challenger_version(settings, "stan", {"neighbour_decay": 1.0})
    client = client_for(settings.tracking_uri)
    assert version != champion and aliases(client, name)["challenger"] == version
    runs = [client.get_run(client.get_model_version(name, v).run_id) for v in (champion, version)]
    assert {r.data.tags["recsys.model"] for r in runs} == {"item_knn"}
    hyperparameters = [{k: v for k, v in r.data.params.items() if k.startswith("model")}
                       for r in runs]
    assert hyperparameters[1] == hyperparameters[0] == {"model": "item_knn"}
    assert session_scorers(settings, {"a": champion, "b": version}) == {
        "a": f"session_model:{DEFAULT_SESSION_MODEL}", "b": "session_model:stan"}
    # without a session model, the registry's challenger is the one put against the champion
    assert challenger_version(settings) == version
