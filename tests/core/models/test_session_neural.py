"""The neural next-item models (GRU4Rec, SASRec): the session models' contract on tiny
sessions with known next items, their training windows, saving as data (no pickle, no
torch.save) and the refusal when PyTorch is missing."""
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from recsys.core.errors import ConfigError
from recsys.core.models.session_neural import (
    GRU4Rec,
    SASRec,
    length_batches,
    training_windows,
)
from recsys.core.models.session_zoo import SESSION_MODELS
from recsys.core.models.storage import files_sha256, load_model, save_model

# item 1 is always followed by 2, item 3 by 4; item 6 is the most clicked
SESSIONS = [[1, 2, 6], [1, 2], [3, 4, 6], [3, 4], [5, 1, 2], [6, 6], [6, 5]] * 10
N_ITEMS = 6
SMALL = {"dim": 16, "epochs": 15, "batch_size": 32, "negatives": 4, "learning_rate": 0.02,
         "dropout": 0.0, "repeat_boost": 0.0}
MODELS = {"gru4rec": GRU4Rec, "sasrec": SASRec}


def small(name: str, **params):
    return MODELS[name](**{**SMALL, **params})


@pytest.fixture(scope="module")
def fitted():
    return {name: small(name).fit(SESSIONS, N_ITEMS) for name in MODELS}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_learns_the_next_items_and_scores_every_item(name, fitted):
    scores = fitted[name].score([[1], [3], [5, 1]])
    assert scores.shape == (3, N_ITEMS + 1) and np.isneginf(scores[:, 0]).all()
    assert np.isfinite(scores[:, 1:]).all()
    assert np.argmax(scores, axis=1).tolist() == [2, 4, 2]
    assert scores[0, 2] == pytest.approx(1.0, abs=1e-3)  # scaled: the best is 1


@pytest.mark.parametrize("name", sorted(MODELS))
def test_unknown_items_and_empty_prefix_score_popularity_only(name, fitted):
    model = fitted[name]
    scores = model.score([[], [99]])
    expected = model.popularity_weight * model.popularity
    np.testing.assert_allclose(scores[:, 1:], np.vstack([expected[1:]] * 2), rtol=1e-6)
    assert np.argmax(scores[0]) == 6


@pytest.mark.parametrize("name", sorted(MODELS))
def test_only_the_last_max_length_items_count(name):
    model = small(name, max_length=3, epochs=2).fit(SESSIONS, N_ITEMS)
    long, tail = [6, 5, 3, 4, 5, 1], [4, 5, 1]
    np.testing.assert_allclose(model.score([long]), model.score([tail]), rtol=1e-5)


def test_repeat_boost_is_added_after_scaling(fitted):
    plain = fitted["gru4rec"].score([[3, 5, 1]])[0]
    boosted = small("gru4rec", repeat_boost=2.0)
    boosted.__dict__.update({k: v for k, v in vars(fitted["gru4rec"]).items()
                             if k != "repeat_boost"})
    scores = boosted.score([[3, 5, 1]])[0]
    assert scores[1] - plain[1] == pytest.approx(2.0, abs=1e-5)  # the newest: 2 / 1
    assert scores[3] - plain[3] == pytest.approx(2.0 / 3, abs=1e-5)
    assert scores[4] == pytest.approx(plain[4], abs=1e-6)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_saved_as_data_and_loaded_with_its_digest(name, fitted, tmp_path):
    assert SESSION_MODELS[name] is MODELS[name]  # in the session zoo, so storage loads it
    model = fitted[name]
    digest = save_model(model, tmp_path / name)
    assert digest == files_sha256(tmp_path / name)
    assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["arrays.npz", "model.json"]
    with zipfile.ZipFile(tmp_path / name / "arrays.npz") as archive:
        assert all(n.endswith(".npy") for n in archive.namelist())
    with np.load(tmp_path / name / "arrays.npz", allow_pickle=False) as arrays:
        assert all(arrays[key].dtype != object for key in arrays.files)  # nothing pickled
    loaded = load_model(tmp_path / name, expected_sha256=digest)
    assert type(loaded) is MODELS[name] and loaded.params() == model.params()
    assert not hasattr(loaded, "_derived_network")  # rebuilt on first scoring
    assert all(w.dtype == np.float32 for w in loaded.weights.values())
    prefixes = [[1], [3, 4], [5, 1, 2], [6], []]
    np.testing.assert_array_equal(loaded.score(prefixes), model.score(prefixes))


def test_the_same_seed_gives_the_same_weights():
    first = small("gru4rec", epochs=2).fit(SESSIONS, N_ITEMS).weights
    second = small("gru4rec", epochs=2).fit(SESSIONS, N_ITEMS).weights
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


def test_windows_make_every_next_item_a_target_once():
    windows = training_windows([[1, 2, 3, 4, 5, 6, 7], [1, 2, 3, 4, 5], [9]], max_length=3)
    assert [w.tolist() for w in windows] == [[1, 2, 3, 4], [4, 5, 6, 7], [1, 2, 3, 4],
                                             [4, 5]]
    batches = length_batches(windows, batch_size=4)
    # shortest first, about 4 targets a batch, padded with 0 on the right
    assert [b[0].tolist() for b in batches] == [[[4, 0, 0], [1, 2, 3]],
                                                [[4, 5, 6], [1, 2, 3]]]
    assert [b[1].tolist() for b in batches] == [[[5, 0, 0], [2, 3, 4]],
                                                [[5, 6, 7], [2, 3, 4]]]


def test_refusals():
    with pytest.raises(ConfigError, match="0 <= dropout < 1"):
        GRU4Rec(dropout=1.0)
    with pytest.raises(ConfigError, match="dim divisible by heads"):
        SASRec(dim=10, heads=3)


def test_without_torch_the_module_imports_and_fitting_says_how_to_install(monkeypatch):
    probe = ("import sys; sys.modules['torch'] = None\n"
             "import recsys.core.models.session_neural as neural\n"
             "print(neural.GRU4Rec().name)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "gru4rec"
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails
    with pytest.raises(ConfigError, match=r"pip install 'recsys\[neural\]'"):
        GRU4Rec().fit([[1, 2]], 2)
