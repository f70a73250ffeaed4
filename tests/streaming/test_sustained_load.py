"""Months of operation in minutes: 1.2M events through collector -> bus -> processor + sink
(separate processes) with a backlog bound of 100k, on a bus Redis of its own capped at
256 MB (noeviction: growing past it would fail writes; the events unbounded would need
more). No 503 while the consumers keep
up, the stream never holds more than the bound, and the lake holds every accepted event
exactly once."""
import uuid

import pytest

from recsys.benchmarks.stream_load import run_load
from recsys.benchmarks.streaming_scale import shop_templates
from recsys.core.settings import Settings
from recsys.streaming.runtime import build_bus
from recsys.tools.local_services import redis_server, temporary_postgres_database

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EVENTS = 1_200_000
BOUND = 100_000
MAXMEMORY = 256 * 2**20
FEAST_REDIS_DB = 13


def test_a_million_events_with_bounded_memory_land_exactly_once(tmp_path):
    with redis_server(tmp_path / "bus", durable=False, maxmemory=MAXMEMORY) as bus_redis, \
            temporary_postgres_database("feast_sustained") as registry:
        settings = Settings(state_dir=tmp_path / "state", feast_profile="production",
                            feast_registry_url=registry, bus_redis_url=bus_redis.url,
                            redis_url=f"redis://127.0.0.1:6379/{FEAST_REDIS_DB}",
                            event_stream=f"load:{uuid.uuid4().hex[:6]}",
                            bus_max_length=BOUND, bus_dedup_seconds=30)
        try:
            result = run_load(settings, shop_templates(tmp_path), EVENTS, rate=8_000)
        finally:
            build_bus(settings.model_copy(update={"bus_redis_url": None})).client.flushdb()
    assert result.accepted == EVENTS and result.duplicates == 0
    assert result.refused_503 == 0, "the consumers kept up: no back-pressure was due"
    assert result.stream_peak_entries <= BOUND
    assert result.redis_peak_used_bytes < MAXMEMORY
    assert sum(result.processor_messages) == EVENTS
    assert result.sink_written == EVENTS
    assert result.lake_rows == result.lake_unique_ids == EVENTS
