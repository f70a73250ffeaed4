"""Two lake sinks in one Kafka consumer group (a real broker, Tansu): when the second joins,
the first writes and acknowledges what it holds before its partitions move, so the new
owner starts after it and no event is landed by both."""
import time

import pytest

from recsys.core.data.event_store import RAW_ZONE, read_window
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from recsys.streaming.kafka_bus import KafkaBus
from recsys.streaming.lake_sink import LakeSink, SinkConfig
from tests.streaming.conftest import kafka_test_bus, rich_event

pytestmark = pytest.mark.integration


def test_a_sink_losing_partitions_to_a_new_member_lands_its_buffer_first(kafka_bootstrap,
                                                                         tmp_path):
    # a session long enough that a loaded machine's late heartbeat never rebalances the
    # lone member early (that would land the buffer before the second member joins)
    first_bus = kafka_test_bus(kafka_bootstrap, partitions=4, session_timeout_ms=10_000)
    second_bus = KafkaBus(kafka_bootstrap, topic=first_bus.topic,
                          session_timeout_ms=first_bus.session_timeout_ms)
    first_bus.publish([rich_event(n, user_id=f"u{n}") for n in range(40)])
    lake = Lake(str(tmp_path / "lake"))
    config = {"max_events": 1_000, "max_seconds": 3_600.0, "block_ms": 200}
    first = LakeSink(first_bus, lake, SinkConfig(consumer="s1", **config))
    second = LakeSink(second_bus, lake, SinkConfig(consumer="s2", **config))
    deadline = time.monotonic() + 60
    while len(first._buffer) < 40 and time.monotonic() < deadline:
        first.poll()  # alone in the group: every partition, all 40 held, nothing written
    assert len(first._buffer) == 40 and first.stats.written == 0
    deadline = time.monotonic() + 60
    while not second_bus.owned_partitions("lake-sink") and time.monotonic() < deadline:
        second.poll()
        first.poll()  # the rebalance happens in here: its partitions go
    assert second_bus.owned_partitions("lake-sink")
    assert first.stats.written == 40  # landed before the partitions moved
    for _ in range(5):
        second.poll()
        first.poll()
    second.flush()
    first.flush()
    assert second.stats.messages == 0  # the new owner started after what was landed
    assert len(read_window(lake, RAW_ZONE, RAW_EVENT_SCHEMA)) == 40
    first_bus.close()
    second_bus.close()


def test_a_sink_of_another_topic_with_the_same_group_name_takes_nothing_from_it(
        kafka_bootstrap, tmp_path):
    """Kafka groups are the cluster's: the sinks of two topics (two shops, staging and
    production) are separate groups, so one joining never revokes (and flushes) the other."""
    config = {"max_events": 1_000, "max_seconds": 3_600.0, "block_ms": 200}
    buses = [kafka_test_bus(kafka_bootstrap, partitions=2, session_timeout_ms=10_000)
             for _ in range(2)]
    for bus in buses:
        bus.publish([rich_event(n, user_id=f"u{n}") for n in range(10)])
    sinks = [LakeSink(bus, Lake(str(tmp_path / f"lake{n}")), SinkConfig(consumer="s", **config))
             for n, bus in enumerate(buses)]
    deadline = time.monotonic() + 60
    while len(sinks[0]._buffer) < 10 and time.monotonic() < deadline:
        sinks[0].poll()
    deadline = time.monotonic() + 60
    while len(sinks[1]._buffer) < 10 and time.monotonic() < deadline:
        sinks[1].poll()
        sinks[0].poll()
    assert [len(sink._buffer) for sink in sinks] == [10, 10]
    assert [sink.stats.written for sink in sinks] == [0, 0]  # no revocation landed a buffer
    assert [bus.owned_partitions("lake-sink") for bus in buses] == [(0, 1), (0, 1)]
    for bus in buses:
        bus.close()
