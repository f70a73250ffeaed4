"""Events the collector acknowledged survive a crash of the Redis started from the shipped
configuration; a volatile Redis is refused at start."""
import time
import uuid

import pandas as pd
import pytest
import redis

from recsys.core.data.event_store import RAW_ZONE
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from recsys.core.errors import ConfigError
from recsys.core.settings import Settings
from recsys.streaming.durability import persistence_problems, require_durable
from recsys.streaming.lake_sink import LakeSink, SinkConfig
from recsys.streaming.redis_bus import RedisStreamBus
from recsys.streaming.runtime import build_collector_bus
from recsys.tools.local_services import redis_server
from tests.streaming.conftest import collector_client

pytestmark = pytest.mark.integration


@pytest.fixture
def durable_redis(tmp_path):
    with redis_server(tmp_path / "redis") as server:
        yield server


def events(start, count):
    now = int(time.time() * 1000)
    return [{"event_id": f"e{n}", "user_id": f"u{n % 7}", "event_type": "view",
             "timestamp": now - 60_000 + n, "properties": {"product_id": f"p{n % 11}"}}
            for n in range(start, start + count)]


def lake_ids(lake: Lake) -> list[str]:
    keys = lake.list(RAW_ZONE)
    return lake.read_tables(keys, columns=["event_id"], schema=RAW_EVENT_SCHEMA) \
        .column("event_id").to_pylist()


def test_every_acknowledged_event_survives_a_redis_crash(durable_redis, tmp_path):
    stream = f"bus:{uuid.uuid4().hex[:6]}"
    bus = RedisStreamBus(durable_redis.url, stream=stream)
    assert require_durable(bus.client) == []
    collector = collector_client(bus)
    lake = Lake(str(tmp_path / "lake"))
    sink_config = SinkConfig(max_events=100_000, max_seconds=3600, block_ms=10)
    sink = LakeSink(bus, lake, sink_config)
    for batch in range(5):  # 500 events: the sink lands and acknowledges them
        assert collector.post("/events", json=events(batch * 100, 100)).status_code == 202
    sink.run(idle_exit_polls=2)
    assert sorted(lake_ids(lake)) == sorted(f"e{n}" for n in range(500))
    for batch in range(5, 10):  # 500 more, acknowledged by the collector only
        assert collector.post("/events", json=events(batch * 100, 100)).status_code == 202

    durable_redis.crash()
    durable_redis.start()

    after = RedisStreamBus(durable_redis.url, stream=stream)
    resumed = LakeSink(after, lake, sink_config)
    resumed.run(idle_exit_polls=2)
    assert resumed.stats.messages == 500  # the group's progress survived too
    ids = lake_ids(lake)
    assert len(ids) == 1000 and set(ids) == {f"e{n}" for n in range(1000)}
    resent = collector_client(after).post("/events", json=events(990, 20))
    assert resent.json() == {"accepted": 10, "duplicates": 10, "rejected": 0}  # ids kept


def test_a_volatile_redis_is_refused_at_start_unless_allowed():
    shared = redis.Redis(host="127.0.0.1", port=6379)  # the machine's, kept in memory only
    problems = persistence_problems(shared)
    assert any(p.startswith("appendonly is 'no'") for p in problems)
    with pytest.raises(ConfigError, match="would lose acknowledged events.*bus.conf"):
        build_collector_bus(Settings(bus_redis_url="redis://127.0.0.1:6379/0"))
    allowed = build_collector_bus(Settings(bus_redis_url="redis://127.0.0.1:6379/0",
                                           allow_volatile_bus=True))
    assert allowed.ping()


def test_timestamps_are_checked_before_anything_is_stored(durable_redis):
    bus = RedisStreamBus(durable_redis.url, stream=f"bus:{uuid.uuid4().hex[:6]}")
    future = events(0, 1)[0] | {"timestamp": int(time.time() * 1000) + 86_400_000}
    ancient = events(1, 1)[0] | {"timestamp": int(pd.Timestamp("2020-01-01").value // 10**6)}
    response = collector_client(bus).post("/events", json=[future, ancient,
                                                                 *events(2, 1)])
    assert response.status_code == 422 and response.json()["accepted"] == 1
    assert [e["errors"][0]["field"] for e in response.json()["errors"]] == ["timestamp"] * 2
    letters = bus.dead_letters()
    assert [d["raw"]["event_id"] for d in letters] == ["e0", "e1"]
    assert "ahead of when the collector received it" in letters[0]["reason"]


def test_no_appendfsync_on_rewrite_is_not_durable(durable_redis):
    client = redis.Redis.from_url(durable_redis.url)
    assert persistence_problems(client) == []
    client.config_set("no-appendfsync-on-rewrite", "yes")  # writes during a rewrite: no fsync
    assert persistence_problems(client) == ["no-appendfsync-on-rewrite is 'yes', needs 'no'"]
    with pytest.raises(ConfigError, match="no-appendfsync-on-rewrite"):
        build_collector_bus(Settings(bus_redis_url=durable_redis.url))
