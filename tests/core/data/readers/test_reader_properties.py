"""Property tests of every reader of outside data: whatever the lines or rows (invalid
UTF-8, NaN / Infinity, deep nesting, duplicate keys, huge numbers, numeric ids, empty
lines), the reader does not raise, every line is an event or a reject with its reason
(read = raw + quarantined), and both can be stored in the lake as they are. Bounded and
derandomized: the same examples on every run."""
import json
import tempfile
from pathlib import Path

import fastavro
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.core.data.event_store import QUARANTINE_SCHEMA
from recsys.core.data.quarantine import quarantine_lines
from recsys.core.data.readers.detect import read_file
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from tests.components.extract.test_whole_event import USER_EVENT_SCHEMA

FAST = settings(max_examples=40, derandomize=True, deadline=None,
                suppress_health_check=list(HealthCheck))

NUMBERS = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([1_790_000_000_000, 2**63 - 1, -(2**63), 1e308]))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=12))
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8)


@st.composite
def event_lines(draw) -> bytes:
    """A rich-format event, each field perhaps of the wrong type, then perhaps damaged."""
    record = {
        "event_id": draw(st.one_of(st.text(max_size=8), NUMBERS)),
        "user_id": draw(st.one_of(st.text(max_size=8), NUMBERS, JSON_VALUES)),
        "event_type": draw(st.sampled_from(["view", "purchase", "search", "", "teleport"])),
        "timestamp": draw(st.one_of(NUMBERS, st.text(max_size=10))),
        "properties": draw(st.one_of(st.fixed_dictionaries(
            {"product_id": st.one_of(st.text(max_size=5), NUMBERS),
             "price": st.one_of(NUMBERS, st.text(max_size=5))},
            optional={"color": JSON_VALUES}), JSON_VALUES)),
        "context": draw(st.one_of(st.fixed_dictionaries(
            {"ip": st.just("203.0.113.9"), "device": st.fixed_dictionaries(
                {"type": st.one_of(st.text(max_size=5), NUMBERS)})}), JSON_VALUES)),
    }
    for key in draw(st.lists(st.text(max_size=5), max_size=2)):
        record[key] = draw(JSON_VALUES)
    text = json.dumps(record, allow_nan=True).encode()
    damage = draw(st.sampled_from(["none", "none", "deep", "duplicate", "latin-1",
                                   "surrogate", "truncate", "two"]))
    if damage == "deep":
        depth = draw(st.sampled_from([20, 255, 600, 1100]))
        text = text[:-1] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"
    elif damage == "duplicate":
        text = text[:-1] + b', "event_id": "again"}'
    elif damage == "latin-1":
        text = text[:-1] + b', "note": "caf\xe9"}'
    elif damage == "surrogate":
        text = text[:-1] + b', "note": "\\udc80"}'
    elif damage == "truncate":
        text = text[:draw(st.integers(0, len(text)))]
    elif damage == "two":
        text = text + draw(st.sampled_from([b" ", b"\r"])) + text
    return text


JSONL_LINES = st.lists(st.one_of(
    event_lines(),
    JSON_VALUES.map(lambda value: json.dumps(value, allow_nan=True).encode()),
    st.binary(max_size=40),
    st.sampled_from([b"", b"   ", b"\x0b", b"NaN", b"{}", b"[]"]),
).map(lambda line: line.replace(b"\n", b" ")), max_size=12)


def assert_storable(result) -> None:
    pa.Table.from_pandas(result.events, schema=RAW_EVENT_SCHEMA, preserve_index=False)
    pa.Table.from_pandas(quarantine_lines(result.rejects), schema=QUARANTINE_SCHEMA,
                         preserve_index=False)
    assert result.rejects["reason"].notna().all()


def read_written(name: str, data: bytes, fmt: str):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        return read_file(path, fmt)


@FAST
@given(lines=JSONL_LINES)
def test_jsonl_every_line_is_an_event_or_a_reject(lines):
    result = read_written("events.jsonl", b"\n".join(lines) + b"\n", "jsonl")
    assert len(result.events) + len(result.rejects) == sum(1 for x in lines if x.strip())
    assert_storable(result)
    kept = result.events.astype(str).to_csv() + result.rejects.astype(str).to_csv()
    assert "203.0.113.9" not in kept  # context.ip, wherever the line ended


def field_values(delimiter: str):
    plain = st.text(alphabet=st.sampled_from(list(f"ab9 .-:{delimiter}é")), max_size=8)
    return st.one_of(plain, st.sampled_from([
        "", "NA", "NaN", "Infinity", "-1e400", "99999999999999999999999", "42",
        "9223372036854775807", "2019-10-01 00:00:00 UTC", "2016-05-09", "1433221332117",
    ])).map(str.encode) | st.just(b"caf\xe9")


CSV_LAYOUTS = {  # format: (file name, header, delimiter)
    "retailrocket": ("events.csv", "timestamp,visitorid,event,itemid,transactionid", ","),
    "rees46": ("rees.csv", "event_time,event_type,product_id,category_id,category_code,brand,"
                           "price,user_id,user_session", ","),
    "diginetica": ("views.csv", "session_id;user_id;item_id;timeframe;eventdate", ";"),
    "user_events": ("user_events.csv", "event_id,user_id,item_id,event_type,timestamp,"
                                       "session_id,rating,price", ","),
    "movielens": ("ratings.csv", "userId,movieId,rating,timestamp", ","),
}


@st.composite
def csv_rows(draw, layout: str) -> list[bytes]:
    """Rows without quotes or line breaks inside a field, so that one line is one row;
    some have a field too many or too few."""
    _, header, delimiter = CSV_LAYOUTS[layout]
    width = len(header.split(delimiter))
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.integers(0, 9)) == 0:
            rows.append(b"")
            continue
        count = draw(st.sampled_from([width, width, width, width - 1, width + 1]))
        rows.append(delimiter.encode().join(
            draw(st.lists(field_values(delimiter), min_size=count, max_size=count))))
    return rows


@pytest.mark.parametrize("layout", sorted(CSV_LAYOUTS))
def test_csv_every_row_is_an_event_or_a_reject(layout):
    name, header, _ = CSV_LAYOUTS[layout]

    @FAST
    @given(rows=csv_rows(layout))
    def check(rows):
        result = read_written(name, b"\n".join([header.encode(), *rows]) + b"\n", layout)
        assert len(result.events) + len(result.rejects) == sum(1 for row in rows if row)
        assert_storable(result)

    check()


TEXT = st.text(max_size=10)
AVRO_PROPERTIES = st.dictionaries(
    st.sampled_from(["productId", "price", "category", "rating", "query", "ip", "color"]),
    st.one_of(TEXT, st.sampled_from(["NaN", "Infinity", "-1e400", "1" * 40, "42", ""])),
    max_size=5)


@st.composite
def avro_records(draw) -> dict:
    return {"eventId": draw(TEXT), "userId": draw(st.one_of(st.none(), TEXT)),
            "sessionId": draw(TEXT), "eventType": draw(st.sampled_from(
                USER_EVENT_SCHEMA["fields"][3]["type"]["symbols"])),
            "timestamp": draw(st.integers(-(2**63), 2**63 - 1)),
            "properties": draw(AVRO_PROPERTIES),
            "context": {"userAgent": draw(TEXT), "ip": draw(TEXT), "platform": draw(TEXT),
                        "referrer": draw(st.one_of(st.none(), TEXT))}}


@FAST
@given(records=st.lists(avro_records(), max_size=8))
def test_avro_every_record_is_an_event_or_a_reject(records):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.avro"
        with path.open("wb") as handle:
            fastavro.writer(handle, fastavro.parse_schema(USER_EVENT_SCHEMA), records)
        result = read_file(path, "avro")
    assert len(result.events) + len(result.rejects) == len(records)
    assert_storable(result)
