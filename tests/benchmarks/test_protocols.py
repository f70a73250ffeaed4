"""Protocols and the beyond-accuracy metrics, on hand-computed values."""
import numpy as np
import pandas as pd
import pytest

from recsys.benchmarks.protocols import (
    kfold_positions,
    ratings_kfold,
    stratified_split,
)
from recsys.core.models.metrics import (
    bootstrap_mean_ci,
    intra_list_diversity,
    novelty,
    paired_bootstrap,
    per_user_ranking,
)
from recsys.core.models.zoo import build_model


def frame_of(pairs):
    return pd.DataFrame(pairs, columns=["user_id", "item_id"])


def test_stratified_split_by_item_follows_the_reference_rule():
    # item x: 4 ratings -> 3 train / 1 test; y: 1 rating -> test (1/1 > 0.75); z: 2 -> 1 / 1
    rows = [(f"u{n}", "x") for n in range(4)] + [("u0", "y")] + [("u1", "z"), ("u2", "z")]
    data = frame_of(rows).assign(rating=1.0)
    train, test = stratified_split(data, 0.75, "item", seed=42)
    assert train.groupby("item_id").size().to_dict() == {"x": 3, "z": 1}
    assert test.groupby("item_id").size().to_dict() == {"x": 1, "y": 1, "z": 1}
    again, _ = stratified_split(data, 0.75, "item", seed=42)
    pd.testing.assert_frame_equal(train, again)
    other, _ = stratified_split(data, 0.75, "item", seed=7)
    assert len(other) == len(train)


def random_ratings(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"user_id": [f"u{i % 30}" for i in range(n)],
                         "item_id": [f"i{(i * 7) % 23}_{i % 3}" for i in range(n)],
                         "rating": rng.integers(1, 6, n).astype(float)})


def test_kfold_positions_are_surprises_folds():
    from surprise import Dataset, Reader
    from surprise.model_selection import KFold

    data = random_ratings(603)  # 603 = 5 * 120 + 3: the first three folds are one longer
    positions = kfold_positions(len(data), 5, random_state=0)
    dataset = Dataset.load_from_df(data[["user_id", "item_id", "rating"]],
                                   Reader(rating_scale=(1, 5)))
    for (train_rows, test_rows), (_, testset) in zip(
            positions, KFold(5, random_state=0).split(dataset)):
        expected = [(u, i, r) for u, i, r, *_ in testset]
        assert list(data.iloc[test_rows][["user_id", "item_id", "rating"]].itertuples(
            index=False, name=None)) == expected
        assert sorted(np.concatenate([train_rows, test_rows])) == list(range(603))
    assert [len(test) for _, test in positions] == [121, 121, 121, 120, 120]


def test_ratings_kfold_scores_the_models_estimates_as_surprise_does():
    """SVD fitted by the model on each fold gives Surprise's own cross-validated RMSE."""
    from surprise import SVD, Dataset, Reader
    from surprise.model_selection import KFold, cross_validate

    data = random_ratings()
    result = ratings_kfold(data, lambda: build_model("svd", n_factors=5, n_epochs=5,
                                                     rating_source="explicit"))
    dataset = Dataset.load_from_df(data[["user_id", "item_id", "rating"]],
                                   Reader(rating_scale=(1, 5)))
    surprise = cross_validate(SVD(n_factors=5, n_epochs=5, random_state=0, lr_all=0.01,
                                  reg_all=0.05), dataset, ["rmse", "mae"],
                              cv=KFold(5, random_state=0))
    assert result["folds"] == 5
    assert result["rmse"] == pytest.approx(surprise["test_rmse"].mean(), abs=1e-9)
    assert result["mae"] == pytest.approx(surprise["test_mae"].mean(), abs=1e-9)


def test_map_full_divides_by_all_relevant_items():
    recs = pd.DataFrame({"user_id": ["u"] * 3, "item_id": ["a", "b", "c"], "rank": [1, 2, 3]})
    relevant = frame_of([("u", "a"), ("u", "c"), ("u", "x"), ("u", "y")])
    row = per_user_ranking(recs, relevant, 3).loc["u"]
    # hits at 1 and 3: precisions 1 and 2/3
    assert row["map_full"] == pytest.approx((1 + 2 / 3) / 4)
    assert row["map"] == pytest.approx((1 + 2 / 3) / 3)


def test_diversity_and_novelty():
    recs = pd.DataFrame({"user_id": ["u"] * 3 + ["v"] * 2, "item_id": ["a", "b", "c", "a", "b"],
                         "rank": [1, 2, 3, 1, 2]})
    category = pd.Series({"a": "shoes", "b": "shoes", "c": "bags"})
    # u: pairs (a,b) same, (a,c), (b,c) differ -> 2/3; v: one pair, same -> 0
    assert intra_list_diversity(recs, category, 3) == pytest.approx((2 / 3 + 0) / 2)
    reach = pd.Series({"a": 4, "b": 2})  # of 4 users; c never seen -> 1 user
    expected = np.mean([0, 1, 2, 0, 1])  # -log2(4/4), -log2(2/4), -log2(1/4)
    assert novelty(recs, reach, 4, 3) == pytest.approx(expected)


def test_bootstrap_intervals():
    values = np.random.default_rng(3).normal(0.3, 0.1, 2000)
    mean, low, high = bootstrap_mean_ci(values, samples=500)
    assert low < mean < high and high - low < 0.02
    same = pd.Series(values, index=[f"u{i}" for i in range(values.size)])
    flat = paired_bootstrap(same, same, samples=200)
    assert flat["difference"] == 0 and flat["low"] == 0 and flat["high"] == 0
    better = paired_bootstrap(same + 0.05, same, samples=200)
    assert better["low"] == pytest.approx(0.05) and better["users"] == values.size
    # a user only the candidate answered counts as 0 for the reference
    lone = paired_bootstrap(pd.Series({"a": 1.0}), pd.Series({"b": 1.0}), samples=50)
    assert lone["difference"] == 0.0 and lone["users"] == 2
