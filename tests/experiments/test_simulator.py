"""The simulated shoppers: the generator's own users and items, and a click model in which
lists that fit a user's tastes are clicked more."""
import numpy as np
import orjson

from recsys.core.data.synthetic.config import ShopConfig
from recsys.core.data.synthetic.generate import generate_shop
from recsys.core.data.synthetic.sessions import MAX_VIEWS
from recsys.core.data.visitors import anonymous_user_id
from recsys.experiments.simulated_visitors import draw_visit, view_events
from recsys.experiments.simulator import Behaviour, audience_of, respond
from recsys.streaming.events import validate_events


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


def test_an_anonymous_visit_browses_one_subcategory_by_the_shopper_s_tastes():
    audience = audience_of(ShopConfig(events=20_000, seed=5))
    rng = np.random.default_rng(1)
    fits, random_fits = [], []
    for shopper in range(300):
        visit = draw_visit(audience, shopper, f"sim-visit-0-{shopper}", rng)
        assert 1 <= len(visit.items) <= MAX_VIEWS and len(set(visit.items)) == len(visit.items)
        assert len({int(audience.item_category[i]) for i in visit.items}) == 1
        assert visit.visitor_id == anonymous_user_id(visit.session_id)
        taste = audience.user_vectors[shopper] @ audience.item_vectors.T
        percentile = taste.argsort().argsort() / (taste.size - 1)
        fits.append(percentile[list(visit.items)].mean())
        random_fits.append(percentile[rng.choice(taste.size, len(visit.items))].mean())
    assert np.mean(fits) > np.mean(random_fits) + 0.15


def test_a_visit_s_views_are_events_the_collector_keeps_under_the_visitor():
    audience = audience_of(ShopConfig(events=4000, seed=11))
    visit = draw_visit(audience, 3, "sim-x-visit-0-7", np.random.default_rng(2))
    validated = validate_events([orjson.loads(e) for e in view_events(audience, visit,
                                                                       now_ms=1_800_000_000_000)])
    assert validated.rejected == []
    rows = validated.rows
    assert [r["item_id"] for r in rows] == [str(audience.item_ids[i]) for i in visit.items]
    assert {r["user_id"] for r in rows} == {visit.visitor_id}
    assert {r["session_id"] for r in rows} == {"sim-x-visit-0-7"}
    assert [r["event_id"] for r in rows] == [f"sim-x-visit-0-7-view-{n}"
                                             for n in range(1, len(rows) + 1)]
    assert rows[-1]["timestamp"] == 1_800_000_000_000
    assert all(r["event_type"] == "view" for r in rows)
