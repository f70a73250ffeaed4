"""Bad lines in a JSON Lines source: every line ends in the raw zone or in quarantine with
its reason (read = raw + quarantined), and one poison line never fails the whole extract."""
import json

import pandas as pd

from recsys.components.extract.extract import ExtractConfig, extract
from recsys.components.validate.rules import ValidationConfig
from recsys.components.validate.validate import validate_window
from recsys.core.data.event_store import (
    CLEAN_ZONE,
    QUARANTINE_SCHEMA,
    QUARANTINE_ZONE,
    RAW_ZONE,
    read_window,
)
from recsys.core.data.schema import EVENT_SCHEMA, RAW_EVENT_SCHEMA

NOW = pd.Timestamp("2026-11-01T00:00:00Z")
DAY_BEFORE_MS = int(NOW.value // 10**6) - 86_400_000


def event(event_id, **fields):
    base = {"event_id": event_id, "user_id": "u1", "session_id": "s1", "event_type": "view",
            "timestamp": DAY_BEFORE_MS, "properties": {"product_id": "p1", "price": 10.0}}
    return {**base, **fields}


def line(record) -> bytes:
    return json.dumps(record).encode()


def quarantined(lake) -> pd.DataFrame:
    return lake.read_tables(lake.list(QUARANTINE_ZONE), schema=QUARANTINE_SCHEMA).to_pandas()


def extract_lines(tmp_path, lake, lines):
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    return extract(ExtractConfig(source=str(source), format="jsonl"), lake)[0]


def test_lines_only_a_lenient_parser_reads_are_kept_or_quarantined_never_dropped(tmp_path,
                                                                                lake):
    lines = [
        line(event("numeric-user", user_id=42)),  # makes Arrow refuse the chunk
        line(event("nan-price")).replace(b'"price": 10.0', b'"price": NaN'),
        line(event("inf-price")).replace(b'"price": 10.0', b'"price": Infinity'),
        line(event("lone-surrogate")).replace(b'"p1"', b'"p\\ud800"'),
        line(event("latin-1")).replace(b'"p1"', b'"caf\xe9"'),
    ]
    report = extract_lines(tmp_path, lake, lines)
    raw = read_window(lake, RAW_ZONE, RAW_EVENT_SCHEMA).set_index("event_id")
    bad = quarantined(lake)
    assert report.rows_read == 5 == len(raw) + len(bad)
    assert (report.rows_written, report.rows_quarantined) == (3, 2)
    assert raw.loc["numeric-user", "user_id"] == "42"
    assert pd.isna(raw.loc["nan-price", "price"])  # as Arrow's fast path reads NaN
    assert raw.loc["inf-price", "price"] == float("inf")  # validate refuses its range
    reasons = sorted(bad["reason"])
    assert reasons[0].startswith("malformed JSON: no low surrogate in string")
    assert reasons[1] == "malformed JSON: not UTF-8 (byte 144 is 0xe9)"
    assert any('"p\\ud800"' in text for text in bad["raw"])


def test_a_latin_1_byte_in_an_arrow_clean_chunk_is_quarantined_and_the_rest_land(tmp_path,
                                                                                 lake):
    lines = [line(event(f"e{i}")) for i in range(50)]
    lines.insert(25, line(event("poison")).replace(b'"p1"', b'"caf\xe9"'))
    report = extract_lines(tmp_path, lake, lines)
    assert (report.rows_read, report.rows_written, report.rows_quarantined) == (51, 50, 1)
    assert report.quarantine_reasons == {"malformed JSON": 1}
    assert quarantined(lake)["raw"].iloc[0].startswith('{"event_id": "poison"')


def test_an_unknown_field_nested_deeper_than_json_writes_is_refused_with_its_reason(
        tmp_path, lake):
    deep = 600  # orjson reads up to 1024 levels and writes at most 254
    poison = line(event("deep")).replace(
        b'"event_id"', b'"nest": ' + b"[" * deep + b"]" * deep + b', "event_id"')
    lines = [line(event(f"e{i}")) for i in range(50)]
    lines.insert(10, poison)
    report = extract_lines(tmp_path, lake, lines)
    assert (report.rows_read, report.rows_written) == (51, 51)
    result = validate_window(lake, ValidationConfig(max_bad_ratio=0.05), now=NOW)
    assert len(read_window(lake, CLEAN_ZONE, EVENT_SCHEMA)) == 50
    refused = quarantined(lake).set_index("event_id")["reason"]
    assert refused["deep"].startswith(
        "malformed: fields beyond the schema cannot be kept as JSON")
    assert result.report.rows_quarantined == 1


def test_a_file_starting_with_a_null_line_is_refused_line_by_line_not_a_crash(tmp_path,
                                                                             lake):
    # Arrow 25's JSON reader crashes the process on a block starting with `null`, and reads
    # a later `null` line as an event with every field empty
    lines = [b"null", line(event("e1")), b"[null]", b'  {"event_id": "e2"} null']
    report = extract_lines(tmp_path, lake, lines)
    assert (report.rows_read, report.rows_written, report.rows_quarantined) == (4, 1, 3)
    assert sorted(quarantined(lake)["reason"]) == [
        "malformed JSON: unexpected content after document at column 22",
        "malformed event: expected an object, got NoneType",
        "malformed event: expected an object, got list"]


def test_a_csv_line_that_is_not_utf_8_is_refused_alone(tmp_path, lake):
    source = tmp_path / "ratings.csv"
    source.write_bytes(b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n"
                       b"1,caf\xe9,4.0,964982703\n2,2,3.5,964982704\n")
    report, _ = extract(ExtractConfig(source=str(source)), lake)
    assert (report.rows_read, report.rows_written, report.rows_quarantined) == (3, 2, 1)
    refused = quarantined(lake).iloc[0]
    assert refused["reason"] == "malformed row: not UTF-8 (byte 5 of line 3 of ratings.csv)"
    assert refused["raw"] == "1,caf\ufffd,4.0,964982703"
