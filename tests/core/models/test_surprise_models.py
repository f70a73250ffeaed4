"""The vectorised Surprise scoring equals Surprise's own predict() pair by pair; the rating
blend is the weighted sum of its parts."""
import numpy as np
import pandas as pd
import pytest

from recsys.core.errors import ConfigError, SchemaError
from recsys.core.models.ratings import implicit_ratings, rating_frame
from recsys.core.models.surprise_models import surprise_trainset
from recsys.core.models.zoo import build_model


@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    users, items = 40, 30
    taste = rng.normal(size=(users, 3)) @ rng.normal(size=(3, items))
    pairs = [(u, i) for u in range(users) for i in range(items) if rng.random() < 0.35]
    stars = [float(np.clip(np.round(3 + taste[u, i] + rng.normal(0, 0.5)), 1, 5))
             for u, i in pairs]
    return pd.DataFrame({"user_id": [f"u{u}" for u, _ in pairs],
                         "item_id": [f"i{i}" for _, i in pairs], "rating": stars,
                         "weight": 1.0})


def unseen_pairs(ratings: pd.DataFrame, n: int = 300) -> list[tuple[str, str]]:
    seen = set(zip(ratings["user_id"], ratings["item_id"]))
    rng = np.random.default_rng(1)
    users, items = ratings["user_id"].unique(), ratings["item_id"].unique()
    pairs = []
    while len(pairs) < n:
        pair = (str(rng.choice(users)), str(rng.choice(items)))
        if pair not in seen:
            pairs.append(pair)
    return pairs


@pytest.mark.parametrize("name, params", [
    ("svd", {"n_factors": 8, "n_epochs": 10}),
    ("svdpp", {"n_factors": 6, "n_epochs": 8}),
    ("knn_baseline", {"user_based": True, "k": 5}),
    ("knn_baseline", {"user_based": False, "k": 5}),
    ("knn_with_means", {"user_based": True, "k": 5, "min_k": 2}),
    ("knn_with_means", {"user_based": False, "k": 5}),
])
def test_vectorised_scores_equal_surprise_predict(ratings, name, params):
    model = build_model(name, **params).fit(ratings)
    algo = model.make_algo()
    frame, scale = rating_frame(ratings, "explicit", "test")
    algo.fit(surprise_trainset(frame, scale))
    pairs = unseen_pairs(ratings)
    expected = np.array([algo.predict(u, i, clip=False).est for u, i in pairs])
    # top-N path: one dense row per user
    scores = model._score(np.array([model.user_index[u] for u, _ in pairs]))
    top_n_path = scores[np.arange(len(pairs)), [model.item_index[i] for _, i in pairs]]
    np.testing.assert_allclose(top_n_path, expected, rtol=1e-5, atol=1e-5)
    # rating path, clipped to the scale like Surprise's predict()
    users, items = zip(*pairs)
    np.testing.assert_allclose(model.predict_ratings(users, items),
                               np.clip(expected, *scale), rtol=1e-5, atol=1e-5)


def test_ratings_of_unknown_users_and_items_are_the_known_baseline_parts(ratings):
    model = build_model("svd", n_factors=4, n_epochs=5).fit(ratings)
    ghost_user, ghost_item = model.predict_ratings(["nobody", "u1"], ["i1", "nothing"])
    assert ghost_user == pytest.approx(np.clip(model.global_mean + model.item_bias[
        model.item_index["i1"]], 1, 5))
    assert ghost_item == pytest.approx(np.clip(model.global_mean + model.user_bias[
        model.user_index["u1"]], 1, 5))


def test_rating_sources(ratings):
    implicit = ratings.drop(columns="rating").assign(weight=[1.0, 3.0, 10.0] * 0 +
                                                     list(np.resize([1.0, 3.0, 10.0],
                                                                    len(ratings))))
    frame, scale = rating_frame(implicit, "auto", "test")
    assert scale == (1.0, 5.0) and frame["rating"].between(1, 5).all()
    assert frame["rating"].nunique() == 3  # three weights, three distinct stars, in order
    assert frame.groupby(implicit["weight"].to_numpy())["rating"].first().is_monotonic_increasing
    with pytest.raises(SchemaError, match="rating_source='explicit'.*missing for 1 of"):
        rating_frame(ratings.assign(rating=[np.nan] + ratings["rating"].tolist()[1:]),
                     "explicit", "test")
    assert implicit_ratings(pd.Series([2.0, 2.0])).tolist() == [5.0, 5.0]


def test_rating_blend_is_the_ridge_weighted_sum_of_its_parts(ratings):
    parts = [["svd", {"n_factors": 6, "n_epochs": 10}],
             ["knn_baseline", {"user_based": False, "k": 10}]]
    blend = build_model("rating_blend", parts=parts, l2=0.0,
                        validation_fraction=0.2).fit(ratings)
    # weights fitted on held-out ratings: in-sample, no part alone does better than the blend
    rmse = blend.validation_rmse
    assert rmse["blend"] <= min(rmse["svd_0"], rmse["knn_baseline_1"]) + 1e-12
    assert blend.weights.shape == (2,) and np.isfinite(blend.weights).all()
    pairs = unseen_pairs(ratings, 50) + [("nobody", "i1"), ("u1", "nothing")]
    users, items = zip(*pairs)
    part_estimates = np.column_stack([p.predict_ratings(users, items)
                                      for p in blend.part_models])
    expected = np.clip(part_estimates @ blend.weights + blend.intercept, 1, 5)
    np.testing.assert_allclose(blend.predict_ratings(users, items), expected, atol=1e-9)
    # the parts are refitted on every rating: the first equals an SVD fitted on its own
    alone = build_model("svd", n_factors=6, n_epochs=10).fit(ratings)
    np.testing.assert_allclose(blend.part_models[0].predict_ratings(users, items),
                               alone.predict_ratings(users, items))
    # the top-N scores are the same estimates
    row = blend.user_index["u3"]
    np.testing.assert_allclose(blend._score(np.array([row]))[0],
                               blend._estimates(row, np.arange(blend.items.size)))


def test_rating_blend_refuses_parts_that_predict_no_ratings():
    with pytest.raises(ConfigError, match="rating models"):
        build_model("rating_blend", parts=[["ease", {}]])
