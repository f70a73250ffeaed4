"""Session features kept incrementally, on hand-made sequences with exact expected values
(late and duplicated events included), and against the batch definitions."""
import numpy as np
import pandas as pd
import pytest

from recsys.feature_repo.features.session_features import session_features
from recsys.streaming.session_state import (
    apply_events,
    cart_deadline,
    features,
    new_state,
    upgrade_state,
)

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC in ms
MIN = 60_000
LATE = 5 * MIN


def ev(n, minute, kind="view", item="i1", category="shoes", price=10.0, user="u1"):
    return {"event_id": f"e{n}", "user_id": user, "item_id": item, "event_type": kind,
            "timestamp": T0 + int(minute * MIN), "category": category, "price": price}


def run(rows, watermark=None):
    state = new_state()
    result = apply_events(state, rows, LATE)
    return state, features(state, watermark), result


def test_recent_items_are_distinct_newest_last_and_capped_at_50():
    rows = [ev(i, i, item=f"i{i % 60}") for i in range(120)]
    rows.append(ev(999, 200, item="i3"))
    _, values, _ = run(rows)
    assert len(values["recent_items"]) == 50
    assert values["recent_items"][-1] == "i3"
    assert values["recent_items"][0] == "i11"  # i0..i59 seen twice; i3 moved to the end


def test_a_state_stored_by_the_earlier_version_is_upgraded_and_keeps_folding():
    old = {"items": [["i1", T0], ["i2", T0 + MIN]], "window": [], "last_purchase": None,
           "carts": [], "last_ts": T0 + MIN}
    state = upgrade_state(old)
    assert state["items"] == ["i1", "i2"] and state["item_ts"] == [T0, T0 + MIN]
    apply_events(state, [ev(7, 2, item="i1")], LATE)
    assert features(state)["recent_items"] == ["i2", "i1"]
    assert state["item_ts"] == [T0 + MIN, T0 + 2 * MIN]
    assert upgrade_state(state) is state and state["items"] == ["i2", "i1"]


def test_windows_count_only_recent_events():
    rows = [ev(1, 0, price=100.0, category="tv"),       # 20 min before T: outside 10 min
            ev(2, 12, price=10.0, category="shoes"),
            ev(3, 15, price=30.0, category="shoes"),
            ev(4, 16, kind="add_to_cart", price=999.0, category="tv"),  # not a view
            ev(5, 20, price=None, category="tv")]        # a view without a price
    _, values, _ = run(rows)
    assert values["avg_view_price_10m"] == pytest.approx(20.0)
    assert values["top_category_30m"] == "tv"  # tv 3 (newest last), shoes 2
    assert values["last_event_ts"] == T0 + 20 * MIN


def test_top_category_ties_go_to_the_most_recent():
    _, values, _ = run([ev(1, 0, category="a"), ev(2, 1, category="b")])
    assert values["top_category_30m"] == "b"


def test_cart_abandonment_needs_ten_quiet_minutes_and_is_cleared_by_a_purchase():
    state, values, _ = run([ev(1, 0, kind="add_to_cart")])
    assert values["cart_abandonment_risk"] is False
    assert cart_deadline(state) == T0 + 10 * MIN
    assert features(state, watermark_ms=T0 + 10 * MIN)["cart_abandonment_risk"] is True
    apply_events(state, [ev(2, 11, kind="purchase")], LATE)
    assert features(state, T0 + 30 * MIN)["cart_abandonment_risk"] is False
    assert cart_deadline(state) is None


def test_comparing_products_pattern():
    rows = [ev(1, 0, item="a"), ev(2, 1, item="b"), ev(3, 2, item="c"),
            ev(4, 3, kind="add_to_cart", item="a")]
    _, values, _ = run(rows)
    assert values["comparing_products"] is False  # only one of them in the cart
    _, values, _ = run(rows + [ev(5, 4, kind="add_to_cart", item="c")])
    assert values["comparing_products"] is True
    _, values, _ = run([ev(1, 0, item="a"), ev(2, 1, item="b", category="hats"),
                        ev(3, 2, item="c"), ev(4, 3, kind="add_to_cart", item="a"),
                        ev(5, 4, kind="add_to_cart", item="c")])
    assert values["comparing_products"] is False  # the run of views was broken


def test_replayed_events_do_not_double_count():
    rows = [ev(1, 0, price=10.0), ev(2, 1, price=20.0, item="i2")]
    state, once, _ = run(rows)
    result = apply_events(state, rows + rows, LATE)
    assert result.duplicates == 4 and result.applied == 0
    assert features(state) == once


def test_late_events_within_tolerance_are_applied_in_event_time_order():
    state, _, _ = run([ev(1, 10, item="b"), ev(2, 12, item="c")])
    result = apply_events(state, [ev(3, 8, item="a", price=40.0)], LATE)
    assert result.applied == 1
    values = features(state)
    assert values["recent_items"] == ["a", "b", "c"]
    assert values["avg_view_price_10m"] == pytest.approx(20.0)  # 40 is 4 min old -> in
    result = apply_events(state, [ev(4, 1, item="z")], LATE)    # 11 min late: dropped
    assert result.late == 1 and "z" not in features(state)["recent_items"]


def test_matches_the_batch_definitions_on_random_sessions():
    rng = np.random.default_rng(7)
    rows = []
    for n in range(400):
        rows.append(ev(n, float(np.sort(rng.uniform(0, 90, 400))[n]),
                       kind=rng.choice(["view", "view", "view", "add_to_cart", "purchase"]),
                       item=f"i{rng.integers(0, 30)}", category=rng.choice(["a", "b", "c"]),
                       price=float(rng.integers(1, 100)), user=f"u{rng.integers(0, 8)}"))
    frame = pd.DataFrame(rows)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="ms", utc=True)
    for user, user_rows in frame.groupby("user_id"):
        state = new_state()
        for start in range(0, len(user_rows), 7):  # arbitrary poll batches
            chunk = user_rows.iloc[start:start + 7].copy()
            chunk["timestamp"] = chunk["timestamp"].astype("int64") // 1_000_000
            apply_events(state, chunk.to_dict("records"), LATE)
        got = features(state)
        want = session_features(user_rows, user_rows["timestamp"].max()).iloc[0]
        assert got["recent_items"] == list(want["recent_items"]), user
        assert got["top_category_30m"] == want["top_category_30m"], user
        assert got["comparing_products"] == bool(want["comparing_products"]), user
        assert got["cart_abandonment_risk"] == bool(want["cart_abandonment_risk"]), user
        if pd.isna(want["avg_view_price_10m"]):
            assert got["avg_view_price_10m"] is None
        else:
            assert got["avg_view_price_10m"] == pytest.approx(want["avg_view_price_10m"])


def test_a_flood_of_one_users_events_keeps_a_bounded_window():
    state = new_state()
    flood = [ev(n, n / 1000) for n in range(5_000)]  # 5,000 events within 5 seconds
    for start in range(0, len(flood), 500):
        apply_events(state, flood[start:start + 500], LATE, max_window=300)
    assert len(state["window"]) == 300
    assert [e[0] for e in state["window"]] == [f"e{n}" for n in range(4_700, 5_000)]
    assert features(state)["last_event_ts"] == T0 + int(4_999 / 1000 * MIN)
    replayed = apply_events(state, flood[-10:], LATE, max_window=300)
    assert replayed.duplicates == 10 and replayed.applied == 0
