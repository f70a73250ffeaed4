"""No reader lets an IP address or a user agent into the lake: not in `extra`, not in a
column, not in the raw text quarantine keeps of a line it could not read (one test per
reader of outside data; the keys are recsys.core.data.personal_data's)."""
import json

import fastavro
import pandas as pd
import pytest

from recsys.components.extract.extract import ExtractConfig, extract
from recsys.core.data.event_store import QUARANTINE_SCHEMA, QUARANTINE_ZONE, RAW_ZONE, read_window
from recsys.core.data.readers.base import read_csv_strings
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from tests.components.extract.test_whole_event import USER_EVENT_SCHEMA, user_event

IP, AGENT = "203.0.113.9", "Mozilla/5.0 (X11 Linux)"
TS = 1_790_000_000_000


def lake_text(lake) -> str:
    """Everything the lake holds for events, as text."""
    raw = read_window(lake, RAW_ZONE, RAW_EVENT_SCHEMA)
    bad = lake.read_tables(lake.list(QUARANTINE_ZONE), schema=QUARANTINE_SCHEMA).to_pandas()
    return pd.concat([raw, bad]).astype(str).to_csv()


def assert_no_personal_data(lake, events_expected):
    stored = read_window(lake, RAW_ZONE, RAW_EVENT_SCHEMA)
    assert len(stored) == events_expected
    text = lake_text(lake)
    assert IP not in text and "Mozilla" not in text and "198.51.100.7" not in text


def rich(event_id, **fields):
    return {"event_id": event_id, "user_id": "u1", "session_id": "s1", "event_type": "view",
            "timestamp": TS, "properties": {"product_id": "p1"}, **fields}


@pytest.mark.parametrize("chunk", ["arrow-clean", "line-by-line"])
def test_jsonl_drops_ip_and_user_agent_at_any_depth(tmp_path, lake, chunk):
    records = [
        rich("a", context={"ip": IP, "userAgent": AGENT, "device": {"type": "mobile"},
                           "screen": {"width": 390}}),
        rich("b", request={"headers": {"X-Forwarded-For": [IP, "198.51.100.7"],
                                       "User-Agent": AGENT}, "ipAddress": IP}),
    ]
    if chunk == "line-by-line":
        records.append(rich("c", user_id=7, remote_addr=IP))  # Arrow refuses the chunk
    lines = [json.dumps(r) for r in records] + [f'{{"broken": 1, "ip": "{IP}", "ua": "{AGENT}"']
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(lines) + "\n")
    report, _ = extract(ExtractConfig(source=str(source)), lake)
    assert report.rows_quarantined == 1
    assert_no_personal_data(lake, len(records))
    extra = read_window(lake, RAW_ZONE, RAW_EVENT_SCHEMA).set_index("event_id")["extra"]
    assert json.loads(extra["a"]) == {"context": {"screen": {"width": 390}}}
    assert json.loads(extra["b"]) == {"request": {"headers": {}}}
    bad = lake.read_tables(lake.list(QUARANTINE_ZONE), schema=QUARANTINE_SCHEMA)
    assert bad.column("raw").to_pylist() == [
        '{"broken": 1, "ip": "<withheld>", "ua": "<withheld>"']


def test_avro_drops_ip_and_user_agent_under_any_name(tmp_path, lake):
    records = [user_event(0, "page_view", {"productId": "p1", "clientIp": IP,
                                           "user_agent": AGENT, "color": "blue"})]
    path = tmp_path / "events.avro"
    with path.open("wb") as handle:
        fastavro.writer(handle, fastavro.parse_schema(USER_EVENT_SCHEMA), records)
    extract(ExtractConfig(source=str(path)), lake)
    assert_no_personal_data(lake, 1)
    stored = read_window(lake, RAW_ZONE, RAW_EVENT_SCHEMA)
    assert json.loads(stored["extra"].iloc[0]) == {"properties": {"color": "blue"}}


CSV_LAYOUTS = {  # layout: (file name, header, a good row, its format)
    "retailrocket": ("events.csv", "timestamp,visitorid,event,itemid,transactionid,ip,user_agent",
                     f'{TS},257597,view,355908,,{IP},"{AGENT}"'),
    "rees46": ("rees.csv", "event_time,event_type,product_id,category_id,category_code,brand,"
               "price,user_id,user_session,ip_address,userAgent",
               f'2026-09-21 13:46:40 UTC,view,44600062,2103807459595387724,,shiseido,35.79,'
               f'541312140,72d76fde,{IP},"{AGENT}"'),
    "diginetica": ("views.csv", "session_id;user_id;item_id;timeframe;eventdate;ip;UA",
                   f"1;NA;81766;526309;2016-05-09;{IP};{AGENT}"),
    "user_events": ("user_events.csv", "event_id,user_id,item_id,event_type,timestamp,"
                    "session_id,rating,price,remote_addr,User-Agent",
                    f'e1,u1,i1,view,{TS},s1,,9.5,{IP},"{AGENT}"'),
    "movielens": ("ratings.csv", "userId,movieId,rating,timestamp,X-Forwarded-For,ua",
                  f'1,1,4.0,964982703,{IP},"{AGENT}"'),
}


@pytest.mark.parametrize("layout", sorted(CSV_LAYOUTS))
def test_csv_columns_named_like_personal_data_are_dropped_and_broken_rows_withheld(
        tmp_path, lake, layout):
    name, header, row = CSV_LAYOUTS[layout]
    delimiter = ";" if layout == "diginetica" else ","
    broken = row + delimiter + "one field too many " + IP
    path = tmp_path / name
    path.write_text("\n".join([header, row, broken]) + "\n")
    frame, rejects = read_csv_strings(path, delimiter)
    assert len(frame) == 1 and len(frame.columns) == len(header.split(delimiter)) - 2
    report, _ = extract(ExtractConfig(source=str(path), format=layout), lake)
    assert (report.rows_written, report.rows_quarantined) == (1, 1)
    assert "row withheld: the file has personal-data column(s)" in rejects["reason"].iloc[0]
    assert_no_personal_data(lake, 1)
