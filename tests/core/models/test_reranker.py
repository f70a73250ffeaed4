"""The feature re-ranker learns what the base model misses: on a shop whose shoppers buy
near their own price level, the price fit lifts NDCG on a temporal holdout."""
import numpy as np
import pandas as pd
import pytest

from recsys.components.evaluate.evaluate import evaluate_model
from recsys.core.errors import ConfigError
from recsys.core.models.reranker import FEATURES
from recsys.core.models.zoo import build_model

START = pd.Timestamp("2026-10-01", tz="UTC")


def price_driven_shop(seed: int = 3, users: int = 400, items: int = 300):
    """Each shopper has a price level and takes items near it, one every two days."""
    rng = np.random.default_rng(seed)
    price = np.exp(rng.uniform(np.log(5), np.log(500), items))
    level = np.exp(rng.uniform(np.log(5), np.log(500), users))
    rows = []
    for user in range(users):
        chance = np.exp(-3 * np.abs(np.log(price / level[user])))
        for step, item in enumerate(rng.choice(items, 14, replace=False,
                                                p=chance / chance.sum())):
            rows.append((f"u{user}", f"i{item}", 1.0,
                         START + pd.Timedelta(days=2 * step + rng.uniform(0, 1))))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "weight", "timestamp"])
    metadata = pd.DataFrame({"item_id": [f"i{i}" for i in range(items)], "avg_price": price,
                             "category": [f"c{i % 5}" for i in range(items)]})
    split = START + pd.Timedelta(days=22)
    return frame[frame.timestamp < split], frame[frame.timestamp >= split], metadata


def test_the_price_fit_lifts_the_base_model_on_a_price_driven_shop():
    train, holdout, metadata = price_driven_shop()
    base = build_model("ease").fit(train, metadata)
    reranked = build_model("reranked").fit(train, metadata)
    weights = dict(zip(FEATURES, reranked.weights))
    assert reranked.chosen_mix > 0 and weights["price_fit"] > 0
    assert reranked.mix_validation[reranked.chosen_mix] > reranked.mix_validation[0.0]
    base_ndcg = evaluate_model(base, holdout)["ndcg_at_10"]
    assert evaluate_model(reranked, holdout)["ndcg_at_10"] > base_ndcg + 0.005


def test_the_re_ranker_needs_item_stats_and_a_collaborative_base():
    train, _, _ = price_driven_shop(users=20, items=30)
    with pytest.raises(ConfigError, match="item_features"):
        build_model("reranked").fit(train)
    with pytest.raises(ConfigError, match="collaborative"):
        build_model("reranked", base="content")
