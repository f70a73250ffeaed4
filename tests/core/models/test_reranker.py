"""The feature re-ranker learns what the base model misses: on a shop whose shoppers buy
near their own price level, the price fit lifts NDCG on a temporal holdout."""
import numpy as np
import pandas as pd
import pytest

from recsys.components.evaluate.evaluate import evaluate_in_detail
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
    base_ndcg = evaluate_in_detail(base, holdout).metrics["ndcg_at_10"]
    assert evaluate_in_detail(reranked, holdout).metrics["ndcg_at_10"] > base_ndcg + 0.005


def test_the_re_ranker_needs_item_stats_and_a_collaborative_base():
    train, _, _ = price_driven_shop(users=20, items=30)
    with pytest.raises(ConfigError, match="item_features"):
        build_model("reranked").fit(train)
    with pytest.raises(ConfigError, match="collaborative"):
        build_model("reranked", base="content")


def test_live_session_features_replace_the_shoppers_history():
    """The price level viewed right now steers the price fit: the same shopper is shown
    dearer items while browsing dear ones, cheaper while browsing cheap ones."""
    train, _, metadata = price_driven_shop()
    reranked = build_model("reranked").fit(train, metadata)
    price = metadata.set_index("item_id")["avg_price"]
    user = "u7"

    def mean_log_price(live):
        items, _ = reranked.top_items(user, 10, live)
        return float(np.log(price[items.astype(str)]).mean())

    usual = mean_log_price(None)
    assert mean_log_price({"price": 400.0, "category": None}) > usual
    assert mean_log_price({"price": 6.0, "category": None}) < usual
    # no live features: the history's profile, exactly as without `live`
    np.testing.assert_array_equal(reranked.top_items(user, 10, {"price": None})[0],
                                  reranked.top_items(user, 10)[0])
    # a base model without live features ignores them
    ease = build_model("ease").fit(train, metadata)
    np.testing.assert_array_equal(ease.top_items(user, 10, {"price": 400.0})[0],
                                  ease.top_items(user, 10)[0])
