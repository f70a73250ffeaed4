"""A consumer behind by more than one fetch: the broker fills a fetch with several MB, and the
consumer must accept such an answer (kafka-python's default of 1 MB closed the connection,
fetched again and read nothing: a processor with a backlog idled until it gave up)."""
import logging
import time

import pytest

from recsys.streaming.kafka_bus import FETCH_MAX_BYTES, RECEIVE_MAX_BYTES
from tests.streaming.conftest import kafka_test_bus, rich_event

pytestmark = pytest.mark.integration

EVENTS = 12_000
PADDING = "x" * 500  # ~0.6 kB an event: ~7 MB on the topic, several MB a fetch


def test_a_backlog_of_several_fetches_is_read_without_a_dropped_connection(kafka_bootstrap,
                                                                            caplog):
    assert RECEIVE_MAX_BYTES > FETCH_MAX_BYTES
    bus = kafka_test_bus(kafka_bootstrap, partitions=4)
    for start in range(0, EVENTS, 2_000):
        result = bus.publish([rich_event(n, properties={"product_id": "p1", "note": PADDING})
                              for n in range(start, start + 2_000)])
        assert result.accepted == 2_000
    caplog.set_level(logging.WARNING, logger="kafka")
    seen: set[str] = set()
    deadline = time.monotonic() + 60
    while len(seen) < EVENTS and time.monotonic() < deadline:
        messages = bus.read("backlog", "c1", 100_000, 1_000)
        seen |= {message.row["event_id"] for message in messages}
        bus.ack("backlog", messages)
    assert len(seen) == EVENTS
    assert bus.lag("backlog") == 0
    refused = [r.getMessage() for r in caplog.records if "Invalid frame length" in r.getMessage()]
    assert refused == []
    bus.close()
