import numpy as np
import pandas as pd
import pytest

from recsys.core.data.readers import read_source
from recsys.core.data.synthetic.config import DirtConfig, ShopConfig
from recsys.core.data.synthetic.generate import generate_shop, write_shop

END = "2026-10-31"


def shop(events=5_000, seed=3, **dirt):
    return generate_shop(ShopConfig(events=events, seed=seed, end=END, dirt=DirtConfig(**dirt)))


def test_same_seed_same_shop_and_exact_size():
    a, b = shop(), shop()
    pd.testing.assert_frame_equal(a.events, b.events)
    assert len(a.events) == 5_000
    assert a.events["event_id"].is_unique
    assert a.events["event_id"].str.fullmatch(r"evt_\d{13}_[a-z0-9]{7}").all()
    assert not shop(seed=4).events["item_id"].equals(a.events["item_id"])


def test_events_stay_in_the_period_and_follow_the_funnel():
    events = shop(events=20_000).events
    end = pd.Timestamp(END, tz="UTC")
    assert events["timestamp"].max() < end
    assert events["timestamp"].min() >= end - pd.Timedelta(days=30)
    mix = events["event_type"].value_counts(normalize=True)
    assert 0.7 < mix["view"] < 0.9 and mix["purchase"] < mix["add_to_cart"]
    # every purchase follows an add_to_cart of the same item in the same session
    carts = set(zip(*[events.loc[events["event_type"] == "add_to_cart", c]
                      for c in ("session_id", "item_id")]))
    purchases = events[events["event_type"] == "purchase"]
    assert all(k in carts for k in zip(purchases["session_id"], purchases["item_id"]))


def test_tastes_make_collaborative_signal():
    events = shop(events=30_000).events
    views = events[events["event_type"] == "view"]
    # a user's views concentrate on few categories (Dirichlet affinities), far from uniform
    top_share = views.groupby("user_id")["category"].agg(
        lambda s: s.value_counts(normalize=True).iloc[0])
    active = views["user_id"].value_counts()
    assert top_share[active[active >= 10].index].median() > 0.5
    # popularity is long-tailed: the top 10% of items draw a large share of views
    counts = views["item_id"].value_counts()
    assert counts.iloc[: max(len(counts) // 10, 1)].sum() / counts.sum() > 0.3


def test_dirt_rates():
    clean = shop()
    dirty = shop(duplicates=0.02, missing_price=0.01, unknown_event_type=0.01)
    events = dirty.events
    assert len(events) == 5_000 + 100  # 2% re-sent
    assert events["event_id"].duplicated().sum() == 50  # half exact copies
    original = events[events["event_id"].str.fullmatch(r"evt_\d{13}_[a-z0-9]{7}")]
    original = original.drop_duplicates("event_id")
    assert len(original) == 5_000
    assert original["price"].isna().sum() == 50
    assert (~original["event_type"].isin(clean.events["event_type"].unique())).sum() == 50


@pytest.mark.parametrize("fmt,expected_types", [
    ("jsonl", {"view", "add_to_cart", "remove_from_cart", "purchase", "rating"}),
    ("rees46", {"view", "add_to_cart", "remove_from_cart", "purchase"}),
    ("retailrocket", {"view", "add_to_cart", "purchase"}),
    ("user_events", {"view", "add_to_cart", "remove_from_cart", "purchase", "rating"}),
])
def test_every_format_reads_back(tmp_path, fmt, expected_types):
    config = ShopConfig(events=3_000, seed=5, end=END, dirt=DirtConfig(malformed=0.01))
    generated = generate_shop(config)
    paths = write_shop(generated, fmt, tmp_path / fmt, config)
    result = read_source(paths[0])
    assert set(result.events["event_type"]) == expected_types
    kept = generated.events["event_type"].isin(expected_types).sum()
    # half of the malformed lines break the layout, half carry an unparseable timestamp
    broken = len(result.rejects) + result.events["timestamp"].isna().sum()
    assert broken == 30
    assert len(result.events) + len(result.rejects) == kept + 30
    if fmt != "retailrocket":
        by_item = generated.events.groupby("item_id")["price"].first()
        read_prices = result.events.dropna(subset=["timestamp"]).groupby("item_id")["price"].first()
        assert np.allclose(read_prices, by_item[read_prices.index])
