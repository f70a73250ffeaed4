"""Two collectors on one Kafka topic (a real broker, Tansu): an event posted to both is
stored twice on the topic (each collector de-duplicates only what it saw itself) and kept
once downstream - once in the lake (the sink's one write per event id and date partition)
and once in the session state (the processor drops a repeated event id)."""
import time
import uuid

import pytest
import redis

from recsys.core.data.event_store import RAW_ZONE, read_window
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from recsys.streaming.kafka_bus import KafkaBus
from recsys.streaming.lake_sink import LakeSink, SinkConfig
from recsys.streaming.processor import ProcessorConfig, SessionProcessor
from tests.streaming.conftest import collector_client, kafka_test_bus, rich_event

pytestmark = pytest.mark.integration


def test_an_event_posted_to_two_collectors_lands_once(kafka_bootstrap, tmp_path):
    first = kafka_test_bus(kafka_bootstrap, partitions=2)
    second = KafkaBus(kafka_bootstrap, topic=first.topic,
                      session_timeout_ms=first.session_timeout_ms)
    events = [rich_event(n, user_id=f"u{n % 3}") for n in range(6)]
    for bus in (first, second):  # a retry that went to the other collector
        response = collector_client(bus).post("/events", json=events)
        assert response.status_code == 202 and response.json()["accepted"] == 6
    lake = Lake(str(tmp_path / "lake"))
    sink = LakeSink(first, lake, SinkConfig(block_ms=1000))
    sink.run(idle_exit_polls=3)
    assert (sink.stats.messages, sink.stats.written, sink.stats.duplicates) == (12, 6, 6)
    landed = read_window(lake, RAW_ZONE, RAW_EVENT_SCHEMA)
    assert sorted(landed["event_id"]) == [f"e{n}" for n in range(6)]

    namespace = f"test:{uuid.uuid4().hex[:8]}"
    client = redis.Redis()
    processor = SessionProcessor(second, client, len, config=ProcessorConfig(
        namespace=namespace, partitions=2, block_ms=1000, read_ahead=False))
    try:
        processor.run(idle_exit_polls=3)
        assert (processor.stats.messages, processor.stats.applied,
                processor.stats.duplicates) == (12, 6, 6)
        assert sorted(entry[0] for entry in processor.state("u0")["window"]) == ["e0", "e3"]
    finally:
        keys = list(client.scan_iter(match=f"{namespace}:*"))
        if keys:
            client.delete(*keys)
    first.close()
    second.close()


def test_the_idempotent_producer_publishes_on_tansu(kafka_bootstrap):
    """librdkafka's idempotent producer gets a producer id from Tansu 0.6 (InitProducerId)
    and its sends are acknowledged, each stored once (kafka-python's got UnknownError)."""
    bus = kafka_test_bus(kafka_bootstrap, partitions=2, idempotent=True,
                         timeout_seconds=5.0)
    events = [rich_event(n, user_id=f"u{n % 3}") for n in range(40)]
    assert bus.publish(events[:20]).accepted == 20
    assert bus.publish(events[20:]).accepted == 20
    got = []
    deadline = time.monotonic() + 15
    while len(got) < 40 and time.monotonic() < deadline:
        got += bus.read("check", "c", 100, 300)
    assert sorted(m.row["event_id"] for m in got) == sorted(e["event_id"] for e in events)
    bus.close()
