"""The simulated shoppers: the generator's own users and items, and a click model in which
lists that fit a user's tastes are clicked more."""
import numpy as np

from recsys.core.data.synthetic.config import ShopConfig
from recsys.core.data.synthetic.generate import generate_shop
from recsys.experiments.simulator import Behaviour, audience_of, respond


def test_the_audience_is_the_generated_shop_s_users_and_items():
    config = ShopConfig(events=4000, seed=11)
    audience = audience_of(config)
    events = generate_shop(config).events
    assert set(events["user_id"].dropna()) <= set(audience.user_ids)
    priced = events.dropna(subset=["price", "item_id"]).drop_duplicates("item_id")
    sample = priced[priced["item_id"].isin(audience.item_index)].head(50)
    assert len(sample) == 50
    for item, price in zip(sample["item_id"], sample["price"]):
        assert audience.prices[audience.item_index[item]] == price


def test_lists_that_fit_tastes_are_clicked_more_and_unknown_items_never():
    audience = audience_of(ShopConfig(events=20_000, seed=5))
    rng = np.random.default_rng(0)
    items = np.array(list(audience.item_index))
    best, random_lists = [], []
    for user in range(200):
        taste = audience.user_vectors[user] @ audience.item_vectors.T
        top = items[np.argsort(-taste)[:10]].tolist()
        best.append(respond(audience, Behaviour(), user, top, rng).list_click_probability)
        shown = rng.choice(items, 10, replace=False).tolist()
        random_lists.append(respond(audience, Behaviour(), user, shown,
                                    rng).list_click_probability)
    assert np.mean(best) > 0.7 and np.mean(random_lists) < 0.25
    nothing = respond(audience, Behaviour(), 0, ["not-an-item"], rng)
    assert (nothing.clicked, nothing.list_click_probability) == (None, 0.0)
