"""The lake sink against other writers of the raw zone and a damaged lake."""
import json
import time
import uuid

import pytest

from recsys.components.extract.extract import ExtractConfig, extract
from recsys.core.data.event_store import RAW_ZONE
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from recsys.streaming.lake_sink import LakeSink, SinkConfig
from recsys.streaming.redis_bus import RedisStreamBus

pytestmark = pytest.mark.integration


def streamed(n, ts):
    return {"event_id": f"e{n}", "user_id": "u1", "item_id": f"p{n}", "event_type": "view",
            "timestamp": ts, "session_id": "s1"}


def raw_ids(lake) -> list[str]:
    return sorted(lake.read_tables(lake.list(RAW_ZONE), columns=["event_id"],
                                   schema=RAW_EVENT_SCHEMA).column("event_id").to_pylist())


@pytest.fixture
def bus():
    instance = RedisStreamBus(stream=f"test:{uuid.uuid4().hex[:8]}")
    yield instance
    instance.reset()


def test_an_event_extracted_after_the_sink_remembered_its_day_is_not_written_twice(
        tmp_path, bus):
    lake = Lake(str(tmp_path / "lake"))
    sink = LakeSink(bus, lake, SinkConfig(block_ms=10, max_seconds=0))
    now = int(time.time() * 1000)
    bus.publish([streamed(0, now - 5000)])
    sink.run(idle_exit_polls=2)  # the sink now remembers today's ids: {e0}
    source = tmp_path / "late.jsonl"
    source.write_text(json.dumps({**streamed(1, now - 4000), "properties": {
        "product_id": "p1"}}) + "\n")
    report, _ = extract(ExtractConfig(source=str(source)), lake)  # e1 lands by extract
    assert report.rows_written == 1
    bus.publish([streamed(1, now - 4000), streamed(2, now - 3000)])  # e1 also streamed
    sink.run(idle_exit_polls=2)
    assert raw_ids(lake) == ["e0", "e1", "e2"]
    assert (sink.stats.written, sink.stats.duplicates) == (2, 1)


def test_a_corrupt_file_in_the_day_is_set_aside_and_the_sink_writes_on(tmp_path, bus):
    lake = Lake(str(tmp_path / "lake"))
    now = int(time.time() * 1000)
    day = time.strftime("%Y-%m-%d", time.gmtime((now - 5000) / 1000))
    broken = f"{RAW_ZONE}/event_date={day}/part-cut-short.parquet"
    lake.write_bytes(broken, b"PAR1 and then the crash")
    sink = LakeSink(bus, lake, SinkConfig(block_ms=10, max_seconds=0))
    bus.publish([streamed(0, now - 5000)])
    sink.run(idle_exit_polls=2)
    assert raw_ids(lake) == ["e0"]
    assert lake.set_aside_keys == [broken]
    assert lake.read_json(f"corrupt/{broken}.reason.json")["reason"].startswith(
        f"{lake.url(broken)} is not a readable Parquet file")
