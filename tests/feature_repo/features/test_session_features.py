"""Session feature definitions on hand-made event sequences with exact expected values."""
import pandas as pd
import pytest

from recsys.feature_repo.features.session_features import session_features

BASE = pd.Timestamp("2026-10-01T12:00:00Z")


def events(rows):
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "event_type", "minute", "price",
                                        "category"])
    frame["timestamp"] = BASE + pd.to_timedelta(frame.pop("minute"), unit="m")
    return frame


def at(minute):
    return BASE + pd.Timedelta(minutes=minute)


def test_recent_items_price_and_category_windows():
    rows = [("u", f"i{k}", "view", k, 10.0 * k, "old") for k in range(55)]  # minutes 0..54
    rows += [("u", "i3", "view", 56, 30.0, "shoes"), ("u", "x", "add_to_cart", 57, 5.0, "shoes")]
    out = session_features(events(rows), at(60)).set_index("user_id").loc["u"]
    # 56 distinct items; i3 moved to the end by its re-view; the 6 oldest (i0-i2, i4-i6) drop
    assert out["recent_items"][-2:] == ["i3", "x"] and len(out["recent_items"]) == 50
    assert out["recent_items"][0] == "i7"
    # views in (50, 60]: minutes 51..54 (510..540) and the re-view of i3 (30)
    assert out["avg_view_price_10m"] == pytest.approx((510 + 520 + 530 + 540 + 30) / 5)
    # (30, 60]: 24 'old' events against 2 'shoes'
    assert out["top_category_30m"] == "old"
    assert out["last_event_ts"] == at(57)


def test_cart_abandonment_needs_ten_quiet_minutes_and_is_cleared_by_a_purchase():
    rows = [("a", "i1", "add_to_cart", 0, 5.0, "c"),
            ("b", "i1", "add_to_cart", 0, 5.0, "c"), ("b", "i1", "purchase", 4, 5.0, "c"),
            ("c", "i1", "add_to_cart", 5, 5.0, "c")]
    out = session_features(events(rows), at(12)).set_index("user_id")
    assert out["cart_abandonment_risk"].to_dict() == {"a": True, "b": False, "c": False}
    later = session_features(events(rows), at(15)).set_index("user_id")
    assert bool(later.loc["c", "cart_abandonment_risk"]) is True


def test_comparing_products():
    compare = [("u", "p1", "view", 0, 1.0, "tv"), ("u", "p2", "view", 1, 1.0, "tv"),
               ("u", "p3", "view", 2, 1.0, "tv"), ("u", "p1", "add_to_cart", 3, 1.0, "tv"),
               ("u", "p3", "add_to_cart", 4, 1.0, "tv")]
    broken_run = [("v", "p1", "view", 0, 1.0, "tv"), ("v", "p2", "view", 1, 1.0, "tv"),
                  ("v", "q", "view", 2, 1.0, "radio"), ("v", "p3", "view", 3, 1.0, "tv"),
                  ("v", "p1", "add_to_cart", 4, 1.0, "tv"),
                  ("v", "p3", "add_to_cart", 5, 1.0, "tv")]
    one_cart = [("w", f"p{k}", "view", k, 1.0, "tv") for k in range(4)] + [
        ("w", "p1", "add_to_cart", 5, 1.0, "tv")]
    out = session_features(events(compare + broken_run + one_cart), at(10)).set_index("user_id")
    assert out["comparing_products"].to_dict() == {"u": True, "v": False, "w": False}
    # more than 30 minutes later the pattern has left the window
    assert not session_features(events(compare), at(40))["comparing_products"].iloc[0]


def test_events_after_the_as_of_time_are_ignored():
    rows = [("u", "i1", "view", 0, 1.0, "c"), ("u", "i2", "view", 20, 1.0, "c")]
    out = session_features(events(rows), at(10)).set_index("user_id").loc["u"]
    assert out["recent_items"] == ["i1"] and out["last_event_ts"] == at(0)
