import pandas as pd
import pytest

from components.evaluate.evaluate import evaluate_model
from components.models.zoo import build_model

TRAIN = pd.DataFrame([("u1", "a", 1.0), ("u1", "b", 1.0), ("u2", "a", 1.0), ("u2", "b", 1.0),
                      ("u2", "c", 1.0), ("u3", "d", 5.0)],
                     columns=["user_id", "item_id", "weight"])


def test_evaluate_counts_cold_users_and_excludes_seen_items():
    holdout = pd.DataFrame([("u1", "c"), ("u1", "a"), ("new", "d")],
                           columns=["user_id", "item_id"])
    model = build_model("item_knn", shrinkage=0.0).fit(TRAIN)
    m = evaluate_model(model, holdout, ks=(1,))
    # u1: top-1 unseen is c (a relevant hit); new: popularity fallback d (a hit)
    assert m["hit_rate_at_1"] == 1.0
    assert m["recall_at_1"] == pytest.approx((1 / 2 + 1) / 2)  # a was seen: never retrieved
    assert m["cold_start_user_share"] == 0.5
    assert m["coverage_at_1"] == pytest.approx(2 / 4)
