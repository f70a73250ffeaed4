import json
from datetime import datetime, timezone

import pandas as pd
import pytest

from recsys.components.extract.extract import ExtractConfig, extract
from recsys.components.preprocess.config import PreprocessConfig
from recsys.components.preprocess.preprocess import preprocess_window
from recsys.components.validate.rules import ValidationConfig
from recsys.components.validate.validate import validate_window
from recsys.core.data.event_store import (
    CLEAN_ZONE,
    QUARANTINE_SCHEMA,
    QUARANTINE_ZONE,
    RAW_ZONE,
    read_window,
)
from recsys.core.data.lake import Lake
from recsys.core.data.processed import read_processed
from recsys.core.data.schema import EVENT_SCHEMA, RAW_EVENT_SCHEMA
from recsys.core.errors import DataQualityError


def rich(event_id, user="u1", item="i1", kind="view", ts=1_790_000_000_000, price=10.0):
    return {"event_id": event_id, "user_id": user, "session_id": "s1", "event_type": kind,
            "timestamp": ts, "context": {"device": {"type": "desktop"}},
            "properties": {"product_id": item, "price": price}}


def write_jsonl(path, records, extra_lines=()):
    lines = [json.dumps(r) for r in records] + list(extra_lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_re_extracting_a_window_writes_nothing_new(tmp_path, lake):
    source = write_jsonl(tmp_path / "a.jsonl", [rich(f"e{i}", ts=1_790_000_000_000 + i * 3_600_000)
                                                for i in range(48)])
    first, window = extract(ExtractConfig(source=str(source)), lake)
    second, _ = extract(ExtractConfig(source=str(source)), lake)
    assert (first.rows_written, second.rows_written) == (48, 0)
    assert second.rows_already_present == 48
    assert second.files_written == []
    stored = read_window(lake, RAW_ZONE, RAW_EVENT_SCHEMA)
    assert len(stored) == 48 and stored["event_id"].is_unique
    # 48 hourly events starting 2026-09-21 13:46 UTC span three dates
    assert len(lake.list(RAW_ZONE)) == 3


def test_window_bounds_are_start_inclusive_end_exclusive(tmp_path, lake):
    base = 1_790_000_000_000
    records = [rich(f"e{i}", ts=base + i * 1000) for i in range(5)]
    source = write_jsonl(tmp_path / "a.jsonl", records)
    start = pd.Timestamp(base + 1000, unit="ms", tz="UTC").to_pydatetime()
    end = pd.Timestamp(base + 3000, unit="ms", tz="UTC").to_pydatetime()
    report, window = extract(ExtractConfig(source=str(source), start=start, end=end), lake)
    assert sorted(window["event_id"]) == ["e1", "e2"]
    assert report.rows_outside_window == 3
    # widening the window later adds only the new events
    report, _ = extract(ExtractConfig(source=str(source)), lake)
    assert (report.rows_written, report.rows_already_present) == (3, 2)


def test_each_kind_of_bad_input_ends_in_quarantine_with_its_reason(tmp_path, lake, now):
    now_ms = int(now.value // 10**6)
    good = [rich(f"g{i}", ts=now_ms - 86_400_000 + i) for i in range(40)]
    bad = [
        rich("unknown-type", kind="wishlist_add", ts=now_ms - 1000),
        rich("future", ts=now_ms + 90 * 86_400_000),
        rich("ancient", ts=pd.Timestamp("1999-01-01", tz="UTC").value // 10**6),
        {**rich("no-user", ts=now_ms - 1000), "user_id": None},
        {**rich("no-item", ts=now_ms - 1000), "properties": {"price": 3.0}},
        rich("negative-price", price=-5.0, ts=now_ms - 1000),
        rich("text-price", price="cheap", ts=now_ms - 1000),
        {**rich("bad-time"), "timestamp": "yesterday-ish"},
        {**rich("bad-rating", ts=now_ms - 1000), "properties": {"product_id": "i", "rating": 99}},
    ]
    source = write_jsonl(tmp_path / "mixed.jsonl", good + bad,
                         extra_lines=['{"event_id": "broken", "user_id": ', "[1, 2, 3]"])
    report, _ = extract(ExtractConfig(source=str(source)), lake)
    result = validate_window(lake, ValidationConfig(max_bad_ratio=0.5), now=now)
    quarantine = lake.read_tables(lake.list(QUARANTINE_ZONE), schema=QUARANTINE_SCHEMA).to_pandas()
    by_id = quarantine.dropna(subset=["event_id"]).set_index("event_id")["reason"]
    expected = {
        "unknown-type": "unknown event_type: wishlist_add",
        "future": "future timestamp",
        "ancient": "timestamp too old",
        "no-user": "missing user_id",
        "no-item": "missing item_id",
        "negative-price": "price out of range: -5.0",
        "text-price": "malformed: price not a number",
        "bad-time": "timestamp not a time: yesterday-ish",
        "bad-rating": "rating out of range: 99.0",
    }
    for event_id, reason in expected.items():
        assert reason in by_id[event_id], (event_id, by_id[event_id])
    lines = quarantine[quarantine["raw"].notna()]
    assert sorted(lines["reason"].str.split(":").str[0]) == ["malformed JSON", "malformed event"]
    assert set(lines["raw"]) == {'{"event_id": "broken", "user_id":', '[1, 2, 3]'}
    # nothing lost: every input line is either clean or quarantined
    clean = read_window(lake, CLEAN_ZONE, EVENT_SCHEMA)
    assert len(clean) == 40
    assert len(clean) + len(quarantine) == len(good) + len(bad) + 2
    assert result.report.reasons["unknown event_type"] == 1
    assert result.report.rows_quarantined == 8  # bad-time was already refused by extract


def test_too_many_bad_rows_fails_and_leaves_the_lake_as_it_was(tmp_path, lake, now):
    now_ms = int(now.value // 10**6)
    records = [rich(f"g{i}", ts=now_ms - 5000) for i in range(6)] + [
        rich(f"b{i}", kind="teleport", ts=now_ms - 5000) for i in range(4)]
    extract(ExtractConfig(source=str(write_jsonl(tmp_path / "x.jsonl", records))), lake)
    before = lake.list("")
    with pytest.raises(DataQualityError) as info:
        validate_window(lake, ValidationConfig(max_bad_ratio=0.1), now=now)
    assert "4 of 10 rows are bad" in str(info.value)
    assert "unknown event_type" in str(info.value)
    assert lake.list("") == before


@pytest.mark.integration
def test_s3_round_trip_source_and_lake(tmp_path, s3_server):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server)
    client.create_bucket(Bucket="shop")
    records = [rich(f"e{i}", user=f"u{i % 7}", item=f"i{i % 11}",
                    kind="purchase" if i % 9 == 0 else "view",
                    ts=1_790_000_000_000 + i * 600_000) for i in range(300)]
    source = write_jsonl(tmp_path / "events.jsonl", records)
    client.upload_file(str(source), "shop", "incoming/2026/events.jsonl")

    lake = Lake("s3://shop/lake", s3_endpoint_url=s3_server)
    report, _ = extract(ExtractConfig(source="s3://shop/incoming/"), lake, s3_server)
    assert report.rows_written == 300
    again, _ = extract(ExtractConfig(source="s3://shop/incoming/2026/events.jsonl"), lake,
                       s3_server)
    assert again.rows_written == 0 and again.rows_already_present == 300
    validate_window(lake, ValidationConfig(),
                    now=pd.Timestamp(datetime(2026, 11, 1, tzinfo=timezone.utc)))
    key, processed = preprocess_window(lake, PreprocessConfig(holdout_days=0.5))
    keys = [obj["Key"] for obj in client.list_objects_v2(Bucket="shop", Prefix="lake/")["Contents"]]
    assert any(k.startswith("lake/raw/events/event_date=") for k in keys)
    assert f"lake/{key}/summary.json" in keys
    back = read_processed(lake, key)
    assert back.summary == processed.summary
    assert len(back.train) == len(processed.train) > 0


def test_events_without_ids_are_kept_once_each_whichever_file_they_come_in(tmp_path, lake):
    records = [rich("", user=f"u{n % 4}", ts=1_790_000_000_000 + n * 1000) for n in range(100)]
    records += [{k: v for k, v in rich("x", ts=1_790_000_500_000).items() if k != "event_id"}]
    first = write_jsonl(tmp_path / "a.jsonl", records)
    report, _ = extract(ExtractConfig(source=str(first)), lake)
    assert (report.rows_read, report.rows_written, report.rows_duplicate_in_source) == (101, 101,
                                                                                         0)
    # the same events in another file, in another order: the same content ids, nothing new
    second = write_jsonl(tmp_path / "b.jsonl", list(reversed(records)))
    again, _ = extract(ExtractConfig(source=str(second)), lake)
    assert (again.rows_written, again.rows_already_present) == (0, 101)
    ids = read_window(lake, RAW_ZONE, RAW_EVENT_SCHEMA)["event_id"]
    assert ids.nunique() == 101 and ids.str.startswith("content_").all()


def test_quarantine_keeps_every_distinct_bad_row(tmp_path, lake, now):
    from recsys.core.data.quarantine import quarantine_rows, write_quarantine

    events = read_source_rows([rich("same-id", user=f"u{n}", item="", kind="view")
                               for n in range(5)], tmp_path)
    frame = quarantine_rows(events, pd.Series(["missing item_id"] * 5, index=events.index))
    assert write_quarantine(lake, frame).written == 5  # five different rows, one shared id
    assert write_quarantine(lake, frame).written == 0  # the same rows again: kept once
    stored = lake.read_tables(lake.list(QUARANTINE_ZONE)).to_pandas()
    assert sorted(stored["user_id"]) == [f"u{n}" for n in range(5)]


def read_source_rows(records, tmp_path):
    from recsys.core.data.readers import read_source

    return read_source(write_jsonl(tmp_path / "bad.jsonl", records), "jsonl").events
