import json

import pandas as pd
import pytest

from recsys.core.data.readers import detect_format, read_source
from recsys.core.data.readers.retailrocket import _read_category_tree, category_path
from recsys.core.data.visitors import anonymous_user_id
from recsys.core.errors import UnknownFormatError


def test_rees46_real_sample(shared_data):
    result = read_source(shared_data / "rees46" / "2019-Oct_head17k.csv")
    events = result.events
    assert len(events) == 17_434
    assert result.rejects.empty
    assert events["event_type"].value_counts().to_dict() == {
        "view": 17_055, "purchase": 214, "add_to_cart": 165}
    assert events["user_id"].nunique() == 4_504
    assert events["item_id"].nunique() == 6_493
    first = events.iloc[0]
    assert first["user_id"] == "541312140"
    assert first["item_id"] == "44600062"
    assert first["price"] == pytest.approx(35.79)
    assert first["brand"] == "shiseido"
    # category_code is empty on this row: the category id stands in
    assert first["category"] == "2103807459595387724"
    assert first["timestamp"] == pd.Timestamp("2019-10-01T00:00:00Z")
    assert first["session_id"] == "72d76fde-8bb3-4e00-8c23-a032dfed738c"
    assert events.iloc[1]["category"] == "appliances.environment.water_heater"
    assert str(events["timestamp"].dtype) == "datetime64[ms, UTC]"
    assert events["price"].dtype == "float64"


def test_movielens_real_sample_as_rating_events(shared_data):
    events = read_source(shared_data / "movielens-small" / "ratings.csv").events
    assert len(events) == 100_836
    assert set(events["event_type"]) == {"rating"}
    assert events["user_id"].nunique() == 610
    assert events["item_id"].nunique() == 9_724
    first = events.iloc[0]
    assert (first["user_id"], first["item_id"], first["rating"]) == ("1", "1", 4.0)
    assert first["timestamp"] == pd.Timestamp(964982703, unit="s", tz="UTC")
    assert first["category"] == "Adventure"  # first genre of Toy Story, from movies.csv
    assert events["rating"].between(0.5, 5).all()
    assert events["event_id"].is_unique


def test_diginetica_real_sample_as_anonymous_session_views(shared_data):
    path = shared_data / "diginetica" / "sample_train-item-views.csv"
    assert detect_format(path) == "diginetica"
    result = read_source(path)
    events = result.events
    assert len(events) == 12_391 and result.rejects.empty
    assert set(events["event_type"]) == {"view"}
    first = events.iloc[0]  # 1;NA;81766;526309;2016-05-09
    assert first["session_id"] == "diginetica_1" and first["item_id"] == "81766"
    assert first["user_id"] == anonymous_user_id("diginetica_1")
    assert first["timestamp"] == pd.Timestamp("2016-05-09T00:08:46.309Z")
    assert events["timestamp"].notna().all() and events["event_id"].is_unique
    named = events[~events["user_id"].str.startswith("anonymous:")]
    assert len(named) > 0 and named["user_id"].str.fullmatch(r"\d+").all()


def test_retailrocket_category_path_on_real_tree(shared_data):
    tree = _read_category_tree(shared_data / "retailrocket" / "category_tree.csv")
    assert category_path("1016", tree) == "1532.1299.213.1016"
    assert category_path("unknown-id", tree) == "unknown-id"
    assert category_path("a", {"a": "b", "b": "a"}) == "b.a"  # a cycle is cut


def test_retailrocket_events_with_properties(tmp_path, shared_data):
    (tmp_path / "events.csv").write_text(
        "timestamp,visitorid,event,itemid,transactionid\n"
        "1433221332117,257597,view,355908,\n"
        "1433224214164,992329,addtocart,248676,\n"
        "1433221999827,111016,transaction,318965,4000\n")
    (tmp_path / "item_properties_part1.csv").write_text(
        "timestamp,itemid,property,value\n"
        "1431226800000,355908,categoryid,1016\n"
        "1431226800000,355908,790,n5400.000\n"
        "1435000000000,355908,790,n6000.000\n"
        "1431226800000,248676,888,1116\n")
    (tmp_path / "category_tree.csv").write_text(
        (shared_data / "retailrocket" / "category_tree.csv").read_text())
    events = read_source(tmp_path).events.set_index("item_id")
    assert events.loc["248676", "event_type"] == "add_to_cart"
    assert events.loc["318965", "event_type"] == "purchase"
    assert events.loc["355908", "category"] == "1532.1299.213.1016"
    assert events.loc["355908", "price"] == 6000.0  # the latest property value wins
    assert pd.isna(events.loc["318965", "price"])
    assert events.loc["355908", "user_id"] == "257597"
    assert events.loc["355908", "timestamp"] == pd.Timestamp(1433221332117, unit="ms", tz="UTC")


RICH_EVENT = {
    "event_id": "evt_1752320520123_abcdefg",
    "user_id": "9f" * 32, "session_id": "sess_1", "event_type": "add_to_cart",
    "timestamp": 1752320520123,
    "context": {"page": {"url": "https://shop/p/1", "referrer": "https://google.com"},
                "device": {"type": "mobile"}, "weather": {"status": "rain", "temperature": 12},
                "temporal": {"time_of_day": "evening", "day_of_week": "monday"},
                "user": {"login_status": "logged_in", "segment": "vip"},
                "campaign": {"utm_source": "newsletter", "utm_campaign": "summer"}},
    "properties": {"product_id": "P-1", "price": 19.9},
}


def test_jsonl_rich_format_flattened(tmp_path):
    second = {**RICH_EVENT, "event_id": "evt_2", "event_type": "addtocart",
              "properties": {"product_id": 42, "price": "12.5"}}
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(RICH_EVENT) + "\n" + json.dumps(second) + "\n"
                    + '{"event_id": "evt_3", "user_id"\n')
    result = read_source(path)
    events = result.events.set_index("event_id")
    row = events.loc["evt_1752320520123_abcdefg"]
    assert row["user_id"] == "9f" * 32
    assert row["item_id"] == "P-1"
    assert row["price"] == pytest.approx(19.9)
    assert row["timestamp"] == pd.Timestamp(1752320520123, unit="ms", tz="UTC")
    assert (row["device_type"], row["referrer"], row["segment"], row["login_status"]) == (
        "mobile", "https://google.com", "vip", "logged_in")
    assert (row["utm_source"], row["utm_campaign"], row["page_url"]) == (
        "newsletter", "summer", "https://shop/p/1")
    # numbers where strings belong (and the reverse) are converted, not refused
    assert events.loc["evt_2", "item_id"] == "42"
    assert events.loc["evt_2", "price"] == 12.5
    assert events.loc["evt_2", "event_type"] == "add_to_cart"
    assert len(result.rejects) == 1
    assert result.rejects.iloc[0]["reason"].startswith("malformed JSON")


def test_user_events_with_items_table(tmp_path):
    (tmp_path / "user_events.csv").write_text(
        "event_id,user_id,item_id,event_type,timestamp,session_id,rating,price\n"
        "e1,u1,i1,view,2026-10-01T10:00:00Z,s1,,\n"
        "e2,u1,i1,cart,1790000000000,s1,,\n"
        "e3,u2,i2,rating,2026-10-02 08:00:00,s2,4.5,30\n")
    (tmp_path / "items.csv").write_text(
        "item_id,name,category,brand,price,description,image_url\n"
        "i1,Phone,electronics.smartphone,nova,299.0,A phone,x\n"
        "i2,Book,books.fiction,,12.0,A book,y\n")
    events = read_source(tmp_path).events.set_index("event_id")
    assert events.loc["e1", "category"] == "electronics.smartphone"
    assert events.loc["e1", "price"] == 299.0  # filled from the items table
    assert events.loc["e3", "price"] == 30.0  # the event's own price wins
    assert events.loc["e2", "event_type"] == "add_to_cart"
    assert events.loc["e2", "timestamp"] == pd.Timestamp(1790000000000, unit="ms", tz="UTC")
    assert events.loc["e3", "timestamp"] == pd.Timestamp("2026-10-02T08:00:00Z")
    assert events.loc["e3", "rating"] == 4.5


def test_unknown_layout_is_refused_naming_formats_and_columns(tmp_path):
    path = tmp_path / "clicks.csv"
    path.write_text("visit;sku;when\n1;81766;526309\n")
    with pytest.raises(UnknownFormatError) as info:
        detect_format(path)
    message = str(info.value)
    for expected in ("visit", "sku", "jsonl", "retailrocket", "rees46", "user_events",
                     "movielens", "diginetica"):
        assert expected in message


def test_explicit_format_overrides_detection(tmp_path):
    path = tmp_path / "ratings.txt"
    path.write_text("userId,movieId,rating,timestamp\n1,2,3.5,964982703\n")
    events = read_source(path, fmt="movielens").events
    assert events.iloc[0]["rating"] == 3.5
