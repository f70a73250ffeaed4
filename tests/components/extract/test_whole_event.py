"""The seeds' whole event in the batch readers: every field of the rich format kept (new
columns, unknown fields in `extra`), search and click events, the Avro `UserEvent` layout,
and a lake written with the previous schema version still read."""
import json

import fastavro
import pandas as pd
import pyarrow as pa
import pytest

from recsys.components.extract.extract import ExtractConfig, extract
from recsys.core.data.event_store import RAW_ZONE, read_window
from recsys.core.data.lake import Lake
from recsys.core.data.readers.detect import read_source
from recsys.core.data.schema import (
    EVENT_FIELDS,
    RAW_EVENT_SCHEMA,
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
)
from recsys.core.data.visitors import anonymous_user_id
from recsys.core.errors import SchemaError
from tests.conftest import REPO

SEEDS_EVENT = json.loads((REPO / "tests" / "fixtures" / "seeds_event.json").read_text())


def schema_version(table: pa.Table) -> int:
    """The schema version a file was written with (1: before versions were written)."""
    value = (table.schema.metadata or {}).get(SCHEMA_VERSION_KEY)
    return int(value) if value else 1
SEEDS_ROW = {
    "event_id": "evt_1752320520123_abcdefg",
    "user_id": "00000dbacae5abe5e23885899a1fa44253a17956c6d1c3d25f88aa139fdfc657",
    "session_id": "session_xyz_789", "event_type": "add_to_cart", "item_id": "prod_123",
    "timestamp": pd.Timestamp(1752320520123, unit="ms", tz="UTC"), "price": 45000.0,
    "page_url": "/products/prod_123", "referrer": "instagram.com", "device_type": "mobile",
    "weather_status": "sunny", "temperature": 26.5, "time_of_day": "afternoon",
    "day_of_week": "saturday", "login_status": "true", "segment": "returning_visitor",
    "utm_source": "instagram", "utm_campaign": "summer_linen_special",
}


def assert_seeds_row(row: pd.Series) -> None:
    for column, value in SEEDS_ROW.items():
        assert row[column] == value, column


def test_the_seeds_example_keeps_every_field_in_jsonl(tmp_path):
    source = tmp_path / "events.jsonl"
    source.write_text(json.dumps(SEEDS_EVENT) + "\n")
    events = read_source(source).events
    assert len(events) == 1
    assert_seeds_row(events.iloc[0])
    assert pd.isna(events.iloc[0]["extra"]) and pd.isna(events.iloc[0]["parse_error"])


def test_unknown_fields_search_and_click_in_jsonl(tmp_path):
    lines = [
        {**SEEDS_EVENT, "event_id": "with-extra", "experiment": {"arm": "b"},
         "properties": {"product_id": "p1", "color": "red"},
         "context": {**SEEDS_EVENT["context"], "screen": {"width": 390}}},
        {"event_id": "s1", "user_id": "u1", "event_type": "search", "timestamp": 1752320520123,
         "properties": {"query": "linen shirt"}},
        {"event_id": "c1", "user_id": "u1", "event_type": "click", "timestamp": 1752320521123,
         "properties": {"product_id": "p9", "source": "recommendations",
                        "recommendation_id": "rec-42"}},
        {"event_id": "v1", "user_id": "u1", "event_type": "page_view",
         "timestamp": 1752320522123, "properties": {"product_id": "p9"}},
        {"event_id": "big", "user_id": "u1", "event_type": "view", "timestamp": 1752320523123,
         "properties": {"product_id": "p9", "blob": "x" * 5000}},
    ]
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    events = read_source(source).events.set_index("event_id")
    assert json.loads(events.loc["with-extra", "extra"]) == {
        "experiment": {"arm": "b"}, "properties": {"color": "red"},
        "context": {"screen": {"width": 390}}}
    assert events.loc["with-extra", "weather_status"] == "sunny"
    assert events.loc["s1", "event_type"] == "search" and events.loc["s1", "query"] == \
        "linen shirt" and pd.isna(events.loc["s1", "item_id"])
    assert events.loc["c1", ["event_type", "item_id", "source", "recommendation_id"]].tolist() \
        == ["click", "p9", "recommendations", "rec-42"]
    assert events.loc["v1", "event_type"] == "view"
    assert "at most 4096 are kept" in events.loc["big", "parse_error"]


USER_EVENT_SCHEMA = {  # the seeds' streaming layout
    "type": "record", "name": "UserEvent", "namespace": "com.shop.events",
    "fields": [
        {"name": "eventId", "type": "string"},
        {"name": "userId", "type": ["null", "string"], "default": None},
        {"name": "sessionId", "type": "string"},
        {"name": "eventType", "type": {"type": "enum", "name": "EventType", "symbols": [
            "page_view", "click", "purchase", "add_to_cart", "search"]}},
        {"name": "timestamp", "type": "long"},
        {"name": "properties", "type": {"type": "map", "values": "string"}},
        {"name": "context", "type": {"type": "record", "name": "Context", "fields": [
            {"name": "userAgent", "type": "string"}, {"name": "ip", "type": "string"},
            {"name": "platform", "type": "string"},
            {"name": "referrer", "type": ["null", "string"], "default": None}]}},
    ],
}


def user_event(n, kind, properties, user="u1"):
    return {"eventId": f"a{n}", "userId": user, "sessionId": "s-1", "eventType": kind,
            "timestamp": 1752320520123 + n * 1000, "properties": properties,
            "context": {"userAgent": "Mozilla/5.0", "ip": "203.0.113.9",
                        "platform": "ios", "referrer": None}}


def test_avro_user_events_are_one_more_input_format(tmp_path):
    records = [
        user_event(0, "page_view", {"productId": "p1", "price": "19.90", "category": "shirts",
                                    "color": "blue"}),
        user_event(1, "click", {"productId": "p2", "recommendationId": "rec-7",
                                "source": "recommendations"}),
        user_event(2, "search", {"query": "linen"}),
        user_event(3, "add_to_cart", {"productId": "p1"}, user=None),
        user_event(4, "purchase", {"productId": "p1", "price": "not a price"}),
    ]
    path = tmp_path / "events.avro"
    with path.open("wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema(USER_EVENT_SCHEMA), records)
    events = read_source(tmp_path).events.set_index("event_id")  # detected by its magic bytes
    assert list(events.index) == ["a0", "a1", "a2", "a3", "a4"]
    assert events.loc["a0", ["event_type", "item_id", "price", "category", "device_type"]] \
        .tolist() == ["view", "p1", 19.9, "shirts", "ios"]
    assert json.loads(events.loc["a0", "extra"]) == {"properties": {"color": "blue"}}
    assert events.loc["a1", ["event_type", "recommendation_id", "source"]].tolist() == \
        ["click", "rec-7", "recommendations"]
    assert events.loc["a2", "query"] == "linen" and pd.isna(events.loc["a2", "item_id"])
    assert events.loc["a3", "user_id"] == anonymous_user_id("s-1")
    assert events.loc["a4", "parse_error"] == "price not a number"
    # every event sent context.userAgent and context.ip: no column keeps them (docs/security.md)
    stored = events.reset_index().astype(str).to_csv()
    assert "203.0.113.9" not in stored and "Mozilla" not in stored
    assert not events["extra"].dropna().str.contains("userAgent|\"ip\"").any()


def test_a_corrupt_avro_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "broken.avro"
    path.write_bytes(b"Obj\x01" + b"\x00" * 20)
    with pytest.raises(SchemaError, match="broken.avro: not a readable Avro"):
        read_source(path)


def test_a_lake_of_the_previous_schema_version_still_reads(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    version_1 = pa.schema(list(EVENT_FIELDS[:17]) + [RAW_EVENT_SCHEMA.field("parse_error")])
    old = pa.Table.from_pylist([{
        "event_id": "old-1", "user_id": "u1", "item_id": "p1", "event_type": "view",
        "timestamp": pd.Timestamp("2025-07-12 10:00", tz="UTC"), "device_type": "mobile"}],
        schema=version_1)
    lake.write_table(f"{RAW_ZONE}/event_date=2025-07-12/part-old.parquet", old)
    source = tmp_path / "new.jsonl"
    source.write_text(json.dumps(SEEDS_EVENT) + "\n")
    extract(ExtractConfig(source=str(source)), lake)
    events = read_window(lake, RAW_ZONE, RAW_EVENT_SCHEMA).set_index("event_id")
    assert list(events.columns) == [c for c in RAW_EVENT_SCHEMA.names if c != "event_id"]
    assert events.loc["old-1", "device_type"] == "mobile"
    assert pd.isna(events.loc["old-1", "weather_status"]) and pd.isna(
        events.loc["old-1", "temperature"])
    assert_seeds_row(events.reset_index().set_index("event_id", drop=False).loc[
        "evt_1752320520123_abcdefg"])
    versions = {key.rsplit("/", 1)[1]: schema_version(lake.read_table(key))
                for key in lake.list(RAW_ZONE)}
    assert versions.pop("part-old.parquet") == 1
    assert set(versions.values()) == {SCHEMA_VERSION}
