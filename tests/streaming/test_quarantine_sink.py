"""Refused events end in the lake's quarantine zone, once each, with their reason."""
import time

import pytest

from recsys.core.data.event_store import QUARANTINE_SCHEMA, QUARANTINE_ZONE
from recsys.core.data.lake import Lake
from recsys.streaming.quarantine_sink import QuarantineSink
from tests.streaming.conftest import collector_client, rich_event

pytestmark = pytest.mark.integration
NOW_MS = int(time.time() * 1000)





def quarantined(lake: Lake):
    keys = lake.list(QUARANTINE_ZONE + "/")
    return lake.read_tables(keys, schema=QUARANTINE_SCHEMA).to_pandas() if keys else None


def test_every_refused_event_lands_in_quarantine_once(bus, tmp_path):
    client = collector_client(bus)
    answer = client.post("/events", json=[
        rich_event(1), rich_event(2, event_type="teleport"),
        rich_event(3, timestamp=NOW_MS + 3_600_000), rich_event(4, properties={"price": 1}),
        "not an object"])
    assert answer.status_code == 422 and answer.json()["rejected"] == 4
    lake = Lake(str(tmp_path / "lake"))
    sink = QuarantineSink(bus.dead_letter_bus(), lake)
    sink.run(idle_exit_polls=2)

    rows = quarantined(lake)
    assert len(rows) == 4 and sink.stats.written == 4
    by_id = dict(zip(rows["event_id"].fillna("-"), rows["reason"]))
    assert by_id["e2"].startswith("collector: event_type")
    assert by_id["e3"].startswith("collector: timestamp") and "ahead" in by_id["e3"]
    assert by_id["e4"].startswith("collector: properties.product_id")
    assert by_id["-"].startswith("collector: (event)")
    assert rows.loc[rows["event_id"] == "e2", "user_id"].item() == "u2"
    assert '"teleport"' in rows.loc[rows["event_id"] == "e2", "raw"].item()
    day = time.strftime("%Y-%m-%d", time.gmtime(NOW_MS / 1000))
    assert all(f"event_date={day}" in key for key in lake.list(QUARANTINE_ZONE + "/"))
    assert bus.dead_letter_count() == 0  # quarantined entries leave the stream

    # the same refused records redelivered (a crash before the ack) are kept once
    bus.dead_letter([{"reason": "event_type: unknown", "errors": [], "received_at": NOW_MS,
                      "raw": rich_event(9, event_type="teleport")}] * 2)
    QuarantineSink(bus.dead_letter_bus(), lake).run(idle_exit_polls=2)
    assert len(quarantined(lake)) == 5


def test_a_corrupt_file_in_the_day_is_set_aside_and_the_quarantine_sink_writes_on(
        bus, tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    day = time.strftime("%Y-%m-%d", time.gmtime(NOW_MS / 1000))
    broken = f"{QUARANTINE_ZONE}/event_date={day}/part-cut-short.parquet"
    lake.write_bytes(broken, b"PAR1 and then the crash")
    bus.dead_letter([{"reason": "event_type: unknown", "errors": [], "received_at": NOW_MS,
                      "raw": rich_event(7, event_type="teleport")}])
    sink = QuarantineSink(bus.dead_letter_bus(), lake)
    sink.run(idle_exit_polls=2)

    rows = quarantined(lake)
    assert rows["event_id"].tolist() == ["e7"] and sink.stats.written == 1
    assert rows["reason"].item().startswith("collector: event_type")
    assert lake.set_aside_keys == [broken]
    assert lake.read_json(f"corrupt/{broken}.reason.json")["reason"].startswith(
        f"{lake.url(broken)} is not a readable Parquet file")
    assert bus.dead_letter_count() == 0
