"""Consumer lag on Kafka (a real broker: Tansu, `kafka_bootstrap`): `KafkaBus.lag(group)` is
the topic's events the group has not committed, over all partitions, right on Tansu 0.6
(whose ListOffsets(latest) names the last record batch's base offset + 1), and a stream
worker's `/metrics` shows it as `recsys_stream_lag{group}`."""
import time

import pytest
from fastapi.testclient import TestClient

from recsys.core.online.bearer_keys import BearerKeys
from recsys.streaming.bus import GroupReader
from recsys.streaming.metrics import StreamSources
from recsys.streaming.worker_http import create_worker_app
from tests.streaming.conftest import kafka_test_bus
from tests.streaming.test_bus_contract import read_all, rows
from tests.streaming.test_metrics import scrape

pytestmark = pytest.mark.integration


@pytest.fixture
def kafka_bus(kafka_bootstrap):
    instance = kafka_test_bus(kafka_bootstrap, partitions=3)
    yield instance
    instance.close()


def by_partition(messages) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in messages:
        counts[message.stream] = counts.get(message.stream, 0) + 1
    return counts


def test_lag_counts_the_events_a_group_has_not_committed(kafka_bus):
    assert kafka_bus.lag("features") == 0  # an empty topic
    kafka_bus.publish(rows(30))  # batches of several records: ListOffsets alone says 3
    kafka_bus.publish(rows(12, prefix="more"))
    assert kafka_bus.lag("features") == 42  # never committed: from the beginning

    got = read_all(kafka_bus, "features", "c1", 42)
    assert len(got) == 42
    assert kafka_bus.lag("features") == 42  # read is not committed
    kafka_bus.ack("features", got[:17])  # per partition a prefix of its offsets
    assert kafka_bus.lag("features") == 25
    kafka_bus.ack("features", got)
    assert kafka_bus.lag("features") == 0

    assert kafka_bus.lag("lake-sink") == 42  # another group, never committed
    kafka_bus.publish(rows(5, prefix="late"))
    assert (kafka_bus.lag("features"), kafka_bus.lag("lake-sink")) == (5, 47)


def test_lag_sums_every_partition_and_each_from_its_own_commit(kafka_bus):
    kafka_bus.publish(rows(60))
    got = read_all(kafka_bus, "features", "c1", 60)
    assert len(got) == 60
    partitions = by_partition(got)
    assert len(partitions) == 3  # the users spread over the three partitions
    one = next(iter(partitions))
    kafka_bus.ack("features", [m for m in got if m.stream == one])
    assert kafka_bus.lag("features") == 60 - partitions[one]


def test_worker_metrics_show_the_groups_lag_on_kafka(kafka_bus):
    reader = GroupReader(kafka_bus, "session-features", "p1", 100, 200, 60_000)
    app = create_worker_app("processor", reader, StreamSources(None, kafka_bus,
                                                               ("session-features",),
                                                               dead_letters=False),
                            BearerKeys(["prometheus-token"]))
    client = TestClient(app)
    lag = ("recsys_stream_lag", (("group", "session-features"),))
    kafka_bus.publish(rows(20))

    def scraped_lag(deadline_seconds=10.0):
        # the first scrape may miss the bus's 0.5 s (the lag probe connects): the next one
        # has it
        deadline = time.monotonic() + deadline_seconds
        while True:
            figures = scrape(client)
            if lag in figures or time.monotonic() > deadline:
                return figures
            time.sleep(0.2)

    before = scraped_lag()
    assert before[("recsys_stream_bus_up", ())] == 1
    assert before[lag] == 20
    messages = []
    deadline = time.monotonic() + 15
    while len(messages) < 20 and time.monotonic() < deadline:
        messages += reader.read()
    assert len(messages) == 20
    kafka_bus.ack("session-features", messages)
    assert scraped_lag()[lag] == 0
