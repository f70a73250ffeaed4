"""preprocess on a hand-made 20-event shop whose every output is computed by hand."""
import numpy as np
import pandas as pd
import pytest

from recsys.components.preprocess.config import PreprocessConfig
from recsys.components.preprocess.preprocess import preprocess
from recsys.core.data.lake import Lake
from recsys.core.data.processed import read_processed, write_processed
from recsys.core.data.schema import conform_events
from recsys.core.errors import DataQualityError

NAN = np.nan
# (id, user, item, type, time in October 2026, price, rating); items i1,i2 in A, i3,i4 in B
ROWS = [
    (1, "u1", "i1", "view", "01 10:00:00", 10, NAN),
    (2, "u1", "i1", "view", "01 10:00:30", 10, NAN),  # resent within a minute: dropped
    (3, "u1", "i1", "view", "01 10:05:00", 10, NAN),
    (4, "u1", "i1", "add_to_cart", "01 10:06:00", NAN, NAN),  # price <- item median 10
    (5, "u1", "i1", "purchase", "01 10:10:00", 10, NAN),
    (6, "u1", "i3", "view", "02 20:00:00", 50, NAN),
    (7, "u2", "i1", "view", "03 09:00:00", 12, NAN),
    (8, "u2", "i2", "view", "03 09:01:00", 20, NAN),
    (9, "u2", "i2", "add_to_cart", "03 09:02:00", 20, NAN),
    (10, "u2", "i2", "remove_from_cart", "03 09:03:00", 20, NAN),
    (11, "u2", "i3", "purchase", "03 09:10:00", 60, NAN),
    (12, "u3", "i4", "view", "04 13:00:00", NAN, NAN),  # no i4 price: category B median
    (13, "u3", "i3", "rating", "05 14:00:00", NAN, NAN),  # rating <- item mean 4.0, price too
    (14, "u2", "i3", "rating", "04 08:00:00", NAN, 4.0),
    (15, "u3", "i2", "view", "06 15:00:00", 22, NAN),
    (16, "u1", "i2", "view", "09 10:00:00", 20, NAN),  # holdout from here (split 10-09)
    (17, "u1", "i2", "purchase", "09 10:05:00", 20, NAN),
    (18, "u4", "i1", "view", "10 11:00:00", 10, NAN),
    (19, "u2", "i4", "view", "10 12:00:00", NAN, NAN),
    (20, "u3", "i3", "view", "10 18:00:00", 70, NAN),
]
CATEGORY = {"i1": "A", "i2": "A", "i3": "B", "i4": "B"}
END = pd.Timestamp("2026-10-11T00:00:00Z")


@pytest.fixture
def events() -> pd.DataFrame:
    frame = pd.DataFrame(ROWS, columns=["event_id", "user_id", "item_id", "event_type",
                                        "timestamp", "price", "rating"])
    frame["event_id"] = "e" + frame["event_id"].astype(str)
    frame["timestamp"] = pd.to_datetime("2026-10-" + frame["timestamp"], utc=True)
    frame["category"] = frame["item_id"].map(CATEGORY)
    return conform_events(frame, "test", with_parse_error=False)


@pytest.fixture
def processed(events):
    config = PreprocessConfig(holdout_days=2, lookback_days=None)
    return preprocess(events, config, window_end=END.to_pydatetime())


def test_near_duplicates_and_fills(processed):
    s = processed.summary
    assert s["near_duplicates_removed"] == 1
    assert "e2" not in set(processed.events["event_id"])
    by_id = processed.events.set_index("event_id")
    assert by_id.loc["e4", "price"] == 10.0
    assert by_id.loc["e12", "price"] == 60.0  # median of B prices 50, 60, 60, 60, 70
    assert by_id.loc["e14", "price"] == 60.0  # i3's median: 50, 60, 70
    assert by_id.loc["e13", "rating"] == 4.0
    assert (s["price_missing"], s["price_from_item"], s["price_from_category"]) == (5, 3, 2)
    assert s["price_unfilled"] == 0
    assert s["split_time"] == "2026-10-09 00:00:00+00:00"


def test_weighted_interactions_and_split(processed):
    train = processed.train.set_index(["user_id", "item_id"])["weight"].to_dict()
    assert train == {("u1", "i1"): 10.0, ("u1", "i3"): 1.0, ("u2", "i1"): 1.0,
                     ("u2", "i2"): 4.0, ("u2", "i3"): 9.0, ("u3", "i2"): 1.0,
                     ("u3", "i3"): 4.0, ("u3", "i4"): 1.0}
    holdout = processed.holdout.set_index(["user_id", "item_id"])["weight"].to_dict()
    assert holdout == {("u1", "i2"): 6.0, ("u2", "i4"): 1.0, ("u3", "i3"): 1.0,
                       ("u4", "i1"): 1.0}
    assert processed.summary["holdout_users_seen_in_train"] == 3
    assert processed.summary["train_events"] == 14 and processed.summary["holdout_events"] == 5


def test_the_summary_describes_the_user_item_matrix(processed):
    # u1: i1, i3; u2: i1, i2, i3; u3: i2, i3, i4 -> 8 of 3 x 4 cells
    assert processed.summary["matrix_shape"] == [3, 4]
    assert processed.summary["matrix_nnz"] == 8
    assert processed.summary["matrix_density"] == round(8 / 12, 8)


def test_user_features(processed):
    users = processed.user_features.set_index("user_id")
    assert users.loc["u1", ["events", "unique_items", "purchases"]].tolist() == [5, 2, 1]
    assert users.loc["u1", "total_spend"] == 10 and users.loc["u1", "avg_spend"] == 10
    assert users.loc["u2", ["events", "unique_items", "purchases", "total_spend"]].tolist() == [
        6, 3, 1, 60]
    assert pd.isna(users.loc["u3", "avg_spend"]) and users.loc["u3", "total_spend"] == 0
    assert users["preferred_category"].to_dict() == {"u1": "A", "u2": "B", "u3": "B"}
    assert users["preferred_time_of_day"].to_dict() == {
        "u1": "morning", "u2": "morning", "u3": "afternoon"}
    assert users.loc["u1", "days_since_last_event"] == pytest.approx(6 + 4 / 24)
    assert users.loc["u3", "days_since_last_event"] == pytest.approx(2 + 9 / 24)
    assert "u4" not in users.index  # holdout-only users have no training features


def test_item_features(processed):
    items = processed.item_features.set_index("item_id")
    assert items.loc["i1", ["views", "unique_users", "purchases"]].tolist() == [3, 2, 1]
    assert items.loc["i1", "conversion_rate"] == pytest.approx(1 / 3)
    assert items.loc["i1", "avg_price"] == pytest.approx(10.4)
    assert items.loc["i3", "avg_rating"] == 4.0 and items.loc["i3", "unique_users"] == 3
    assert items["category"].to_dict() == CATEGORY
    # categories of 2 items use global quartiles: 10.4 < 20.5 < 57.5 < 60
    assert items["price_band"].to_dict() == {"i1": "budget", "i2": "mid", "i3": "premium",
                                             "i4": "luxury"}
    # popularity decays with a 7-day half-life: i4's one view 4 days 11 hours before the split
    assert items.loc["i4", "popularity_score"] == pytest.approx(0.5 ** ((4 + 11 / 24) / 7))


def test_round_trip_through_the_lake(processed, tmp_path):
    lake = Lake(str(tmp_path))
    write_processed(processed, lake, "snap")
    back = read_processed(lake, "snap")
    assert back.summary == processed.summary
    pd.testing.assert_frame_equal(back.train, processed.train)


def test_window_without_training_events_is_refused(events):
    with pytest.raises(DataQualityError, match="no training events before the split"):
        preprocess(events, PreprocessConfig(holdout_days=30), window_end=END.to_pydatetime())


def test_every_event_is_accounted_for_in_the_summary(events):
    config = PreprocessConfig(holdout_days=1, lookback_days=0.5)
    summary = preprocess(events, config).summary
    assert summary["events_before_lookback"] > 0  # the window is shorter than the data
    assert summary["events_in"] == (summary["itemless_events"]
                                    + summary["near_duplicates_removed"]
                                    + summary["train_events"] + summary["holdout_events"]
                                    + summary["events_before_lookback"])


def test_searches_are_counted_and_clicks_weighted(events):
    more = conform_events(pd.DataFrame([
        {"event_id": "s1", "user_id": "u4", "item_id": None, "event_type": "search",
         "timestamp": pd.Timestamp("2026-10-02 10:00", tz="UTC"), "query": "shirt"},
        {"event_id": "c1", "user_id": "u4", "item_id": "i2", "event_type": "click",
         "timestamp": pd.Timestamp("2026-10-02 10:01", tz="UTC"), "price": 20.0,
         "category": "A"}]), "test", with_parse_error=False)
    config = PreprocessConfig(holdout_days=2, lookback_days=None)
    result = preprocess(pd.concat([events, more], ignore_index=True), config,
                        window_end=END.to_pydatetime())
    assert result.summary["itemless_events"] == 1
    assert result.summary["events_in"] == len(events) + 2
    train = result.train.set_index(["user_id", "item_id"])
    assert train.loc[("u4", "i2"), "weight"] == 2.0  # a click weighs 2 by default
    assert result.train["item_id"].notna().all()
