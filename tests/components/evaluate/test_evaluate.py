import pandas as pd
import pytest

from recsys.components.evaluate.evaluate import evaluate_in_detail
from recsys.core.models.zoo import build_model

TRAIN = pd.DataFrame([("u1", "a", 1.0), ("u1", "b", 1.0), ("u2", "a", 1.0), ("u2", "b", 1.0),
                      ("u2", "c", 1.0), ("u3", "d", 5.0)],
                     columns=["user_id", "item_id", "weight"])


def test_evaluate_counts_cold_users_and_excludes_seen_items():
    holdout = pd.DataFrame([("u1", "c"), ("u1", "a"), ("new", "d")],
                           columns=["user_id", "item_id"])
    model = build_model("item_knn", shrinkage=0.0).fit(TRAIN)
    m = evaluate_in_detail(model, holdout, ks=(1,)).metrics
    # u1: top-1 unseen is c (a relevant hit); new: popularity fallback d (a hit)
    assert m["hit_rate_at_1"] == 1.0
    assert m["recall_at_1"] == pytest.approx((1 / 2 + 1) / 2)  # a was seen: never retrieved
    assert m["cold_start_user_share"] == 0.5
    assert m["coverage_at_1"] == pytest.approx(2 / 4)


def test_detail_has_rating_errors_only_for_explicit_models_and_a_ci():
    from recsys.components.evaluate.evaluate import evaluate_in_detail

    rated = TRAIN.assign(rating=[4.0, 2.0, 5.0, 1.0, 3.0, 4.0])
    holdout = pd.DataFrame([("u1", "c", 3.0), ("u3", "a", 5.0)],
                           columns=["user_id", "item_id", "rating"])
    svd = build_model("svd", n_factors=2, n_epochs=5).fit(rated)
    detail = evaluate_in_detail(svd, holdout, ks=(10,), bootstrap_samples=200)
    predicted = svd.predict_ratings(["u1", "u3"], ["c", "a"])
    expected_rmse = ((predicted - [3.0, 5.0]) ** 2).mean() ** 0.5
    assert detail.metrics["rmse"] == pytest.approx(expected_rmse)
    assert detail.metrics["ndcg_at_10_ci_low"] <= detail.metrics["ndcg_at_10"] \
        <= detail.metrics["ndcg_at_10_ci_high"]
    assert list(detail.per_user.index) == ["u1", "u3"]
    implicit = build_model("svd", n_factors=2, n_epochs=5).fit(TRAIN)  # weights, no stars
    assert "rmse" not in evaluate_in_detail(implicit, holdout, ks=(10,)).metrics


def test_paired_difference_only_for_metrics_kept_per_user():
    from recsys.components.evaluate.compare import paired_difference

    a = pd.DataFrame({"ndcg": [0.5, 0.7]}, index=["u1", "u2"])
    b = pd.DataFrame({"ndcg": [0.5, 0.5]}, index=["u1", "u2"])
    paired = paired_difference(a, b, "ndcg_at_10")
    assert paired.metric == "ndcg_at_10" and paired.difference == pytest.approx(0.1)
    assert paired.users == 2 and paired.confidence == 0.95
    assert paired_difference(a, b, "ndcg_at_20") is None
    assert paired_difference(a, b, "coverage_at_10") is None
