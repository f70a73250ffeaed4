"""Contract of the next-item session models: fit on sessions, score every item for a
prefix, repeat consumption as configured, save and load as data with the files' SHA-256."""
import numpy as np
import pytest

from recsys.core.errors import ConfigError
from recsys.core.models.base import NotFittedError
from recsys.core.models.session_zoo import SESSION_MODELS, build_session_model
from recsys.core.models.storage import ModelIntegrityError, files_sha256, load_model, save_model

# item 1 is always followed by 2, item 3 by 4; item 6 is popular but never after 1
SESSIONS = [[1, 2, 6], [1, 2], [3, 4, 6], [3, 4], [5, 1, 2], [6, 6], [6, 5]]
N_ITEMS = 6
NAMES = sorted(SESSION_MODELS)
NEURAL = ("gru4rec", "sasrec")
"""Trained by gradient steps from a random start: what they learn from a handful of
sessions is checked in test_session_neural.py, on sessions and sizes made for them."""


@pytest.mark.parametrize("name", [n for n in NAMES if n not in NEURAL])
def test_scores_every_item_and_follows_the_sessions(name):
    model = build_session_model(name).fit(SESSIONS, N_ITEMS)
    prefixes = [[1], [3], [5, 1]]
    scores = model.score(prefixes)
    assert scores.shape == (3, N_ITEMS + 1) and np.isneginf(scores[:, 0]).all()
    assert np.isfinite(scores[:, 1:]).all()
    for row, prefix in enumerate(prefixes):  # the next step, not a repeat
        scores[row, prefix] = -np.inf
    assert np.argmax(scores[0]) == 2 and np.argmax(scores[2]) == 2
    assert np.argmax(scores[1]) == 4


@pytest.mark.parametrize("name", NAMES)
def test_unknown_items_and_empty_prefix_fall_back_to_popularity(name):
    model = build_session_model(name).fit(SESSIONS, N_ITEMS)
    scores = model.score([[], [99]])
    assert np.argmax(scores[0]) == 6 and np.argmax(scores[1]) == 6  # the most clicked


@pytest.mark.parametrize("name", NAMES)
def test_repeat_boost_moves_items_already_in_the_prefix(name):
    plain = build_session_model(name, repeat_boost=0.0).fit(SESSIONS, N_ITEMS).score(
        [[3, 5, 1]])[0]
    penalty = build_session_model(name, repeat_boost=-3.0).fit(SESSIONS, N_ITEMS).score(
        [[3, 5, 1]])[0]
    boost = build_session_model(name, repeat_boost=5.0).fit(SESSIONS, N_ITEMS).score(
        [[3, 5, 1]])[0]
    assert np.argmax(boost) == 1  # the newest prefix item, boosted by 5 / 1
    assert boost[3] - plain[3] == pytest.approx(5.0 / 3)  # the oldest: 5 / age 3
    assert max(penalty[[1, 3, 5]]) < min(penalty[[2, 4, 6]])


@pytest.mark.parametrize("name", NAMES)
def test_save_and_load_as_data_with_its_digest(name, tmp_path):
    model = build_session_model(name, repeat_boost=0.3).fit(SESSIONS, N_ITEMS)
    digest = save_model(model, tmp_path / name)
    assert digest == files_sha256(tmp_path / name)
    nested = ["models"] if name == "ensemble" else []  # the members, each a model folder
    assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["arrays.npz", "model.json",
                                                                   *nested]
    loaded = load_model(tmp_path / name, expected_sha256=digest)
    assert type(loaded) is type(model) and loaded.params() == model.params()
    prefixes = [[1], [3, 4], [5, 1, 2], [6]]
    np.testing.assert_array_equal(loaded.score(prefixes), model.score(prefixes))
    (tmp_path / name / "model.json").write_text(
        (tmp_path / name / "model.json").read_text().replace("0.3", "0.4"))
    with pytest.raises(ModelIntegrityError, match="do not match the registry"):
        load_model(tmp_path / name, expected_sha256=digest)


def test_stan_weighs_neighbours_items_by_distance_to_the_shared_item():
    # neighbour [1, 7, 8, 9]: after 1, item 7 is nearest and 9 farthest
    model = build_session_model("stan", neighbour_decay=1.0, repeat_boost=0.0).fit(
        [[1, 7, 8, 9]], 9)
    scores = model.score([[1]])[0]
    assert scores[7] > scores[8] > scores[9]
    assert scores[8] / scores[7] == pytest.approx(np.exp(-1.0), rel=1e-3)


def test_vsknn_prefers_neighbours_of_the_newest_prefix_item():
    sessions = [[1, 10], [2, 20]]
    sknn = build_session_model("sknn").fit(sessions, 20).score([[1, 2]])[0]
    vsknn = build_session_model("vsknn").fit(sessions, 20).score([[1, 2]])[0]
    assert sknn[10] == pytest.approx(sknn[20])
    assert vsknn[20] > vsknn[10]


def test_sequential_rules_weigh_one_over_distance():
    model = build_session_model("sequential_rules", window=3, recent=1).fit([[1, 2, 3, 4]], 4)
    scores = model.score([[1]])[0]
    assert scores[2] == pytest.approx(1.0, abs=1e-5)  # scaled by the best: 1/1
    assert scores[3] == pytest.approx(0.5, abs=1e-5) and scores[4] == pytest.approx(1 / 3,
                                                                                     abs=1e-5)


def test_refusals():
    with pytest.raises(NotFittedError):
        build_session_model("sknn").score([[1]])
    with pytest.raises(ConfigError, match="unknown session model"):
        build_session_model("no_such_model")
    with pytest.raises(ConfigError, match="item ids must run from 1 to 3"):
        build_session_model("sknn").fit([[1, 4]], 3)
    with pytest.raises(ConfigError, match="needs k >= 1"):
        build_session_model("vsknn", k=0)


def test_slist_keeps_a_vocabulary_of_the_most_clicked_items():
    # items 1 and 2 are clicked most; with a vocabulary of 2, item 3 scores only popularity
    sessions = [[1, 2], [1, 2], [2, 1], [1, 3], [2, 3]] * 3
    model = build_session_model("slist", vocabulary=2, reg=1.0, repeat_boost=0.0).fit(
        sessions, 3)
    assert model.vocabulary_items.tolist() == [1, 2] and model.weights.shape == (2, 2)
    scores = model.score([[1], [3]])
    assert scores[0, 2] > scores[0, 3]
    assert scores[1, 3] == pytest.approx(model.popularity_weight * model.popularity[3])
    with pytest.raises(ConfigError, match="0 <= alpha <= 1"):
        build_session_model("slist", alpha=2.0)


def test_stan_prefers_recent_neighbours_and_sknn_does_not():
    # two neighbours share item 1; the newer one (later in the file) continues with 3
    sessions = [[1, 2], [1, 3]]
    stan = build_session_model("stan", recency_decay=1.0).fit(sessions, 3).score([[1]])[0]
    sknn = build_session_model("sknn").fit(sessions, 3).score([[1]])[0]
    assert stan[3] / stan[2] == pytest.approx(np.e, rel=1e-3)  # one session apart
    assert sknn[3] == pytest.approx(sknn[2], abs=1e-5)


def test_defaults_are_the_values_tuned_on_retailrocket():
    assert build_session_model("vsknn").params() == {
        "repeat_boost": 5.0, "popularity_weight": 1e-6, "k": 50, "sample": 1000}
    assert build_session_model("stan").params() == {
        "repeat_boost": 5.0, "popularity_weight": 1e-6, "k": 100, "sample": 2500,
        "position_decay": 2.0, "recency_decay": 1e5, "neighbour_decay": 0.5}
    assert build_session_model("sequential_rules").params()["recent"] == 5
    assert build_session_model("slist").params()["repeat_boost"] == 2.0
