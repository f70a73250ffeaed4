"""Model-specific answers: cold items, the hybrid's alpha, EASE's closed form."""
import numpy as np
import pandas as pd
import pytest

from recsys.core.errors import ConfigError
from recsys.core.models.blend import minmax_rows, simplex_grid
from recsys.core.models.hybrid import ALPHAS
from recsys.core.models.zoo import MODELS, build_model

# two tastes: shoe people (s*) and bag people (b*); "new-shoe" and "new-bag" have metadata
# but no interactions yet
ROWS = [(u, i, 1.0) for u in ("s1", "s2", "s3", "s4") for i in ("shoe-a", "shoe-b", "shoe-c")
        if (u, i) != ("s4", "shoe-c")] + \
       [(u, i, 1.0) for u in ("b1", "b2", "b3") for i in ("bag-a", "bag-b")]
ITEMS = pd.DataFrame({
    "item_id": ["shoe-a", "shoe-b", "shoe-c", "bag-a", "bag-b", "new-shoe", "new-bag"],
    "category": ["fashion.shoes"] * 3 + ["fashion.bags"] * 2 + ["fashion.shoes",
                                                                 "fashion.bags"],
    "brand": ["acme", "acme", "zeta", "kite", "kite", "acme", "kite"],
    "price_band": ["mid", "mid", "budget", "luxury", "luxury", "mid", "luxury"],
})


@pytest.fixture
def interactions():
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    frame["timestamp"] = pd.Timestamp("2026-10-01", tz="UTC") + pd.to_timedelta(
        np.arange(len(frame)), unit="h")
    return frame


@pytest.mark.parametrize("name", ["content", "lightfm_warp", "hybrid"])
def test_cold_items_with_metadata_are_scored(name, interactions):
    model = build_model(name).fit(interactions, ITEMS)
    assert model.cold_items.tolist() == [i in ("new-bag", "new-shoe") for i in model.items]
    recs = model.recommend(["s4"], k=10)
    assert {"new-shoe", "new-bag"} <= set(recs["item_id"])
    assert np.isfinite(recs["score"]).all()


def test_content_ranks_the_cold_item_by_its_metadata(interactions):
    recs = build_model("content").fit(interactions, ITEMS).recommend(["s4", "b1"], k=1)
    assert recs.set_index("user_id")["item_id"].to_dict() == {"s4": "new-shoe",
                                                              "b1": "new-bag"}
    similar = build_model("content").fit(interactions, ITEMS).similar_items(["new-shoe"], k=2)
    assert similar["similar_item_id"].tolist()[0] in ("shoe-a", "shoe-b")  # same brand+band


@pytest.mark.parametrize("name", ["item_knn", "ease", "svd", "popularity"])
def test_models_without_metadata_never_recommend_cold_items(name, interactions):
    recs = build_model(name).fit(interactions, ITEMS).recommend(["s4", "nobody"], k=10)
    assert not {"new-shoe", "new-bag"} & set(recs["item_id"])


def test_content_needs_metadata(interactions):
    with pytest.raises(ConfigError, match="needs item_features"):
        build_model("content").fit(interactions)


def test_simplex_grid_lists_every_weight_vector_once():
    grid = simplex_grid(3, 0.5)
    assert sorted(grid) == sorted([(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0),
                                   (0.5, 0.5, 0.0), (0.5, 0.0, 0.5), (0.0, 0.5, 0.5)])
    assert len(simplex_grid(3, 0.1)) == 66
    with pytest.raises(ConfigError, match="divide 1 evenly"):
        simplex_grid(2, 0.3)


def test_blend_weights_are_chosen_on_validation_and_a_corner_is_its_part(interactions):
    model = build_model("blend", step=0.5, validation="random").fit(interactions)
    assert set(model.weight_validation) == set(simplex_grid(3, 0.5))
    assert model.chosen_weights == max(model.grid, key=lambda w: (model.weight_validation[w],
                                                                   w))
    users = ["s1", "s4", "b2"]
    corner = build_model("blend", parts=[["ease", {}], ["rp3beta", {}], ["item_knn", {}]],
                         weights=[0.0, 1.0, 0.0]).fit(interactions)
    alone = build_model("rp3beta").fit(interactions)
    rows = np.array([alone.user_index[u] for u in users])
    np.testing.assert_allclose(corner._score(rows),
                               minmax_rows(alone._score(rows).astype(float)), atol=1e-9)
    half = build_model("blend", parts=[["ease", {"l2": 10.0}], ["item_knn", {}]],
                       weights=[0.5, 0.5]).fit(interactions)
    ease = build_model("ease", l2=10.0).fit(interactions)
    knn = build_model("item_knn").fit(interactions)
    expected = 0.5 * minmax_rows(ease._score(rows).astype(float)) + \
        0.5 * minmax_rows(knn._score(rows).astype(float))
    np.testing.assert_allclose(half._score(rows), expected, atol=1e-6)
    for bad in ({"parts": [["ease", {}]]}, {"parts": [["ease", {}], ["blend", {}]]},
                {"weights": [0.5, 0.5]}, {"weights": [1.2, -0.1, -0.1]}):
        with pytest.raises(ConfigError):
            build_model("blend", **bad)


def test_hybrid_alpha_is_chosen_on_validation_and_its_extremes_are_its_parts(interactions):
    model = build_model("hybrid", validation="random").fit(interactions, ITEMS)
    alpha_validation = {alpha: ndcg for (alpha, _), ndcg in model.weight_validation.items()}
    assert set(alpha_validation) == set(ALPHAS)
    assert model.chosen_weights[0] == max(ALPHAS, key=lambda a: (alpha_validation[a], a))
    users = ["s1", "s4", "b2"]
    for alpha, part in ((1.0, "item_knn"), (0.0, "content")):
        blended = build_model("hybrid", alpha=alpha).fit(interactions, ITEMS)
        alone = build_model(part).fit(interactions, ITEMS)
        rows = np.array([alone.user_index[u] for u in users])
        expected = minmax_rows(alone._score(rows).astype(float))
        got = blended._score(rows)
        if part == "item_knn":  # cold items are 0 for the cf part before scaling
            expected = minmax_rows(np.where(alone.cold_items, 0.0, alone._score(rows)))
        np.testing.assert_allclose(got, expected, atol=1e-9)
    with pytest.raises(ConfigError, match="alpha must be in"):
        build_model("hybrid", alpha=1.5)


def test_ease_matches_the_closed_form(interactions):
    model = build_model("ease", l2=2.0).fit(interactions)
    x = model.seen.toarray().astype(float)
    x[x > 0] = 1.0
    p = np.linalg.inv(x.T @ x + 2.0 * np.eye(x.shape[1]))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    np.testing.assert_allclose(model._score(np.arange(x.shape[0])), x @ b, rtol=1e-4, atol=1e-5)


def test_ease_with_dropout_is_the_least_squares_fit_to_inputs_with_items_dropped(
        interactions):
    """EDLAE: the weights minimise the expected loss of reconstructing X from X with each
    item dropped with probability p (kept ones scaled by 1/(1-p)), diag(B) = 0. The
    expectation is taken exactly, over every drop mask, and each column is solved on its
    own - not through the model's formula."""
    import itertools

    drop, l2 = 0.3, 2.0
    model = build_model("ease", l2=l2, dropout=drop).fit(interactions)
    x = model.seen.toarray().astype(float)
    x[x > 0] = 1.0
    n = x.shape[1]
    expected_gram = np.zeros((n, n))
    for mask in itertools.product((0.0, 1.0), repeat=n):
        mask = np.array(mask)
        chance = np.prod(np.where(mask == 1.0, 1 - drop, drop))
        corrupted = x * mask / (1 - drop)
        expected_gram += chance * corrupted.T @ corrupted
    gram = x.T @ x  # E[corrupted' x]: the target is the clean input
    weights = np.zeros((n, n))
    for j in range(n):
        rest = np.flatnonzero(np.arange(n) != j)
        system = expected_gram[np.ix_(rest, rest)] + l2 * np.eye(rest.size)
        weights[rest, j] = np.linalg.solve(system, gram[rest, j])
    np.testing.assert_allclose(model._score(np.arange(x.shape[0])), x @ weights,
                               rtol=1e-4, atol=1e-5)
    plain = build_model("ease", l2=l2).fit(interactions)
    assert not np.allclose(plain._score(np.arange(x.shape[0])), x @ weights, atol=1e-3)
    with pytest.raises(ConfigError, match="dropout must be in"):
        build_model("ease", dropout=1.0)


def test_ease_weights_stay_row_major_through_storage(interactions, tmp_path):
    from recsys.core.models.storage import load_model, save_model

    model = build_model("ease", l2=2.0).fit(interactions)
    assert model.weights.flags.c_contiguous  # sparse @ dense would copy them per call
    save_model(model, tmp_path / "ease")
    loaded = load_model(tmp_path / "ease")
    assert loaded.weights.flags.c_contiguous
    np.testing.assert_array_equal(loaded._score(np.arange(3)), model._score(np.arange(3)))


def test_ease_keeps_the_most_interacted_items(interactions):
    model = build_model("ease", max_items=2).fit(interactions)  # 4 users each; others 3
    assert sorted(model.items[model.kept]) == ["shoe-a", "shoe-b"]
    recs = model.recommend(["b1"], k=10)
    assert set(recs["item_id"]) == {"shoe-a", "shoe-b"}


def test_bad_hyperparameters_name_the_model():
    with pytest.raises(ConfigError, match="model 'ease': bad hyperparameters"):
        build_model("ease", lambda_=3)
    with pytest.raises(ConfigError, match="loss must be one of"):
        build_model("lightfm_warp", loss="hinge")


def test_rp3beta_scores_are_the_users_row_times_the_penalised_walk(interactions):
    """Paudel et al.: W = (P_iu^a P_ui^a) / pop(j)^b with a zero diagonal, scores x_u W - the
    penalty on the candidate j, not on the user's items."""
    model = build_model("rp3beta", alpha=0.7, beta=0.4, neighbours=100).fit(interactions)
    x = (model.seen.toarray() > 0).astype(float)
    user_to_item = x / x.sum(axis=1, keepdims=True)
    degree = x.sum(axis=0)
    item_to_user = (x / np.where(degree > 0, degree, 1)).T
    walk = (item_to_user ** 0.7) @ (user_to_item ** 0.7)
    walk = walk * np.power(np.maximum(degree, 1), -0.4)[None, :]
    np.fill_diagonal(walk, 0.0)
    rows = np.arange(model.users.size)
    np.testing.assert_allclose(model._score(rows), x @ walk, rtol=1e-5, atol=1e-6)


def random_interactions(seed: int) -> pd.DataFrame:
    """3,000 random clicks of 60 users on 80 items: enough for a factor model to learn from."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"user_id": [f"u{u}" for u in rng.integers(0, 60, 3000)],
                         "item_id": [f"i{i}" for i in rng.integers(0, 80, 3000)],
                         "weight": 1.0})


def test_lightfm_fits_the_same_model_twice_from_the_same_data_and_seed():
    """One thread by default: a retrained candidate is reproducible (Hogwild threads are not)."""
    frame = random_interactions(3)
    first, second = (build_model("lightfm_warp", epochs=5).fit(frame) for _ in range(2))
    assert first.threads == 1
    np.testing.assert_array_equal(first.item_embeddings, second.item_embeddings)
    np.testing.assert_array_equal(first.user_embeddings, second.user_embeddings)


@pytest.mark.parametrize("name", sorted(name for name, model in MODELS.items()
                                        if model.search_space))
def test_every_search_space_value_is_a_parameter_the_model_takes(name):
    """A search may set any point of the space: a misspelt key or a refused value would
    fail mid-retrain (`build_model` raises ConfigError on either)."""
    for key, values in MODELS[name].search_space.items():
        for value in values:
            assert isinstance(build_model(name, **{key: value}), MODELS[name])


def test_warp_negative_sampling_depth_changes_the_fit_and_bpr_does_not_search_it():
    frame = random_interactions(5)
    shallow, deep = (build_model("lightfm_warp", epochs=5, max_sampled=m).fit(frame)
                     for m in (1, 100))
    assert not np.allclose(shallow.item_embeddings, deep.item_embeddings)
    assert "max_sampled" in MODELS["lightfm_warp"].search_space
    assert "max_sampled" not in MODELS["lightfm_bpr"].search_space
