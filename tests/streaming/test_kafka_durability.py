"""The collector on Kafka: 202 only after the broker acknowledged (acks=all), 503 with
Retry-After while the broker is down, and back to 202 by itself when the broker returns on
the same address (a broker of the test's own, stopped and started)."""
import time

import pytest

from recsys.streaming.kafka_topics import ensure_topics, event_topics
from tests.streaming.conftest import collector_client, rich_event
from tests.streaming.kafka_broker import TEST_SESSION_TIMEOUT_MS, TansuBroker

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def broker(tmp_path):
    instance = TansuBroker(tmp_path / "broker.log").start()
    yield instance
    instance.stop()


def post_until_accepted(client, body, seconds=20.0):
    deadline = time.monotonic() + seconds
    while True:
        response = client.post("/events", json=body)
        if response.status_code == 202 or time.monotonic() > deadline:
            return response
        time.sleep(0.5)


def test_broker_stopped_answers_503_and_the_collector_recovers_by_itself(broker):
    from recsys.streaming.kafka_bus import KafkaBus

    topics = event_topics("test.durability", 2, 1, 3_600_000, "delete")
    ensure_topics(topics, broker.bootstrap, {})
    bus = KafkaBus(broker.bootstrap, topic="test.durability", timeout_seconds=2.0,
                   session_timeout_ms=TEST_SESSION_TIMEOUT_MS)
    client = collector_client(bus)
    assert client.post("/events", json=rich_event(1)).status_code == 202
    assert client.get("/health").json()["bus"] == "up"

    broker.stop()
    refused = client.post("/events", json=rich_event(2))
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) >= 1
    # the batch was handed to the producer and expired unacknowledged: maybe stored
    assert refused.json()["stored"] == "unknown"
    assert "did not acknowledge" in refused.json()["error"]
    assert client.get("/health").json()["bus"] == "down"

    broker.start()  # same port; memory storage: the topics are made again, as a durable
    ensure_topics(topics, broker.bootstrap, {})  # broker would have kept them
    accepted = post_until_accepted(client, rich_event(2))
    assert accepted.status_code == 202, accepted.text
    assert client.get("/health").json()["bus"] == "up"
    got = []
    deadline = time.monotonic() + 15
    while "e2" not in {m.row["event_id"] for m in got} and time.monotonic() < deadline:
        got += bus.read("check", "c", 100, 200)
    assert [m.row["event_id"] for m in got].count("e2") >= 1
    bus.close()
