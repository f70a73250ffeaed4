"""The contract every recommender passes, on a tiny shop with known answers."""
import pandas as pd
import pytest

from recsys.core.errors import ConfigError, NotFoundError, SchemaError
from recsys.core.models.base import NotFittedError, Recommender
from recsys.core.models.storage import load_model, save_model
from recsys.core.models.zoo import MODELS, build_model

# u1 saw a, b; u2 saw a, b, c  ->  for u1, item c is the collaborative answer
ROWS = [("u1", "a", 1.0), ("u1", "b", 1.0), ("u2", "a", 1.0), ("u2", "b", 1.0),
        ("u2", "c", 1.0), ("u3", "c", 1.0), ("u3", "d", 3.0), ("u4", "d", 2.0),
        ("u4", "e", 1.0), ("u5", "d", 1.0)]
# metadata: a and b are the same kind of shoe, c another brand's shoe, d and e are bags
ITEMS = pd.DataFrame({"item_id": list("abcde"),
                      "category": ["shoes", "shoes", "shoes", "bags", "bags"],
                      "brand": ["acme", "acme", "zeta", "bolt", "kite"],
                      "price_band": ["mid", "mid", "budget", "luxury", "budget"]})


@pytest.fixture
def interactions():
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    frame["timestamp"] = pd.Timestamp("2026-10-01", tz="UTC")
    return frame


@pytest.fixture(params=sorted(MODELS))
def model(request) -> Recommender:
    return build_model(request.param)


def test_recommend_shape_and_exclude_seen(model, interactions):
    recs = model.fit(interactions, ITEMS).recommend(["u1", "u2"], k=2)
    assert list(recs.columns) == ["user_id", "item_id", "score", "rank", "fallback"]
    assert recs.groupby("user_id").size().to_dict() == {"u1": 2, "u2": 2}
    seen = set(zip(interactions["user_id"], interactions["item_id"]))
    assert not any((u, i) in seen for u, i in zip(recs["user_id"], recs["item_id"]))
    assert recs.groupby("user_id")["rank"].apply(list).to_dict() == {"u1": [1, 2], "u2": [1, 2]}
    assert (recs.groupby("user_id")["score"].diff().dropna() <= 0).all()


def test_top_items_is_recommend_for_one_user_without_a_frame(model, interactions):
    model.fit(interactions, ITEMS)
    for user in ("u1", "u2", "u3", "u4", "u5"):
        for k in (1, 2, 50):
            items, scores = model.top_items(user, k)
            recs = model.recommend([user], k=k)
            assert items.tolist() == recs["item_id"].tolist(), (user, k)
            assert scores.tolist() == pytest.approx(recs["score"].tolist()), (user, k)
    with pytest.raises(NotFoundError):
        model.top_items("nobody", 2)


def test_include_seen(model, interactions):
    recs = model.fit(interactions, ITEMS).recommend(["u3"], k=5, exclude_seen=False)
    assert len(recs) == 5


def test_unknown_users_get_popularity_and_are_flagged(model, interactions):
    recs = model.fit(interactions, ITEMS).recommend(["nobody", "u1"], k=2)
    cold = recs[recs["user_id"] == "nobody"]
    assert cold["fallback"].all() and not recs.loc[recs["user_id"] == "u1", "fallback"].any()
    assert cold["item_id"].tolist() == ["d", "a"]  # d weighs 6; a, b, c weigh 2 (ties by id)


def test_k_larger_than_catalogue(model, interactions):
    recs = model.fit(interactions, ITEMS).recommend(["u1"], k=50)
    assert sorted(recs["item_id"]) == ["c", "d", "e"]  # every unseen item, nothing more


def test_bad_k_and_unfitted(model, interactions):
    with pytest.raises(NotFittedError):
        model.recommend(["u1"], k=3)
    model.fit(interactions, ITEMS)
    for k in (0, -1, 2.5):
        with pytest.raises(ConfigError, match="k must be a positive integer"):
            model.recommend(["u1"], k=k)


def test_fit_validates_input(model, interactions):
    with pytest.raises(SchemaError, match="weight"):
        model.fit(interactions.drop(columns=["weight"]), ITEMS)
    with pytest.raises(SchemaError, match="no interactions"):
        model.fit(interactions.iloc[:0], ITEMS)


def test_refit_forgets_the_old_data(model, interactions):
    model.fit(interactions, ITEMS)
    other = pd.DataFrame([("x", "p", 1.0), ("y", "q", 2.0)], columns=["user_id", "item_id",
                                                                      "weight"])
    other_items = pd.DataFrame({"item_id": ["p", "q"], "category": ["hats", "hats"]})
    recs = model.fit(other, other_items).recommend(["u1"], k=5)
    assert set(recs["item_id"]) == {"p", "q"} and recs["fallback"].all()


def test_save_load_round_trip_gives_identical_scores(model, interactions, tmp_path):
    model.fit(interactions, ITEMS)
    digest = save_model(model, tmp_path / "model")
    assert not list((tmp_path / "model").rglob("*.pkl"))
    loaded = load_model(tmp_path / "model", expected_sha256=digest)
    assert type(loaded) is type(model)
    users = ["u1", "u2", "u3", "u4", "ghost"]
    pd.testing.assert_frame_equal(model.recommend(users, k=3), loaded.recommend(users, k=3))
    pd.testing.assert_frame_equal(model.similar_items(["a"], k=2),
                                  loaded.similar_items(["a"], k=2))


def test_similar_items(model, interactions):
    model.fit(interactions, ITEMS)
    similar = model.similar_items(["a"], k=2)
    assert list(similar.columns) == ["item_id", "similar_item_id", "score", "rank"]
    assert "a" not in set(similar["similar_item_id"])
    assert similar.iloc[0]["similar_item_id"] == "b"  # a and b share both their users
    with pytest.raises(NotFoundError):
        model.similar_items(["zzz"], k=2)


def test_item_knn_finds_the_collaborative_answer(interactions):
    recs = build_model("item_knn", shrinkage=0.0).fit(interactions).recommend(["u1"], k=1)
    assert recs["item_id"].tolist() == ["c"]
    # columns a, b, c each have norm sqrt(2); sim(a, c) = sim(b, c) = 1/2; u1 holds a and b
    assert recs["score"].iloc[0] == pytest.approx(1.0)


def test_fitted_models_score_without_the_training_libraries(interactions, tmp_path):
    """Serving images (and the seldon-core v1 environment) carry NumPy/SciPy/pandas only:
    a loaded model of any kind must recommend with scikit-learn, Surprise and LightFM
    unimportable."""
    import subprocess
    import sys

    for name in MODELS:
        save_model(build_model(name).fit(interactions, ITEMS), tmp_path / name)
    script = (
        "import sys\n"
        "for blocked in ('sklearn', 'surprise', 'lightfm'):\n"
        "    sys.modules[blocked] = None\n"
        "from recsys.core.models.storage import load_model\n"
        f"for name in {sorted(MODELS)!r}:\n"
        f"    model = load_model({str(tmp_path)!r} + '/' + name)\n"
        "    recs = model.recommend(['u1', 'ghost'], k=2)\n"
        "    assert len(recs) == 4, (name, recs)\n"
        "    model.similar_items(['a'], k=2)\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
