"""The Kafka consumers under load: behind by more than one fetch (the broker fills a fetch
with several MB, and the consumer must accept such an answer: kafka-python's default of 1 MB
closed the connection, fetched again and read nothing, so a processor with a backlog idled
until it gave up), and asked what they own while they wait in `consume`."""
import logging
import threading
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


def test_the_owned_partitions_are_readable_while_another_thread_consumes(kafka_bootstrap):
    """The benchmarks and the tests ask a worker's bus which partitions it owns
    from their own thread while the worker's thread waits in `consume`: the answer comes
    from the rebalance callbacks, not from the client (whose `assignment()` waited for the
    consume to return, forever on an idle topic)."""
    bus = kafka_test_bus(kafka_bootstrap, partitions=2)
    stop = threading.Event()

    def consume():
        while not stop.is_set():
            bus.read("owned", "c1", 100, 2_000)

    reader = threading.Thread(target=consume)
    assert bus.owned_partitions("owned") is None  # no consumer yet
    reader.start()
    try:
        answers: list = []
        deadline = time.monotonic() + 30
        while not answers[-1:] or answers[-1] != (0, 1):
            assert time.monotonic() < deadline, answers[-3:]
            asking = threading.Thread(target=lambda: answers.append(
                bus.owned_partitions("owned")))
            asking.start()
            asking.join(timeout=1.0)
            assert not asking.is_alive(), "owned_partitions waited on the consuming thread"
            time.sleep(0.1)
    finally:
        stop.set()
        reader.join()
    bus.close()
    assert bus.owned_partitions("owned") is None
