"""The collector on Kafka against a broker that freezes (SIGSTOP) or restarts empty (Tansu's
memory storage), each on a broker of the test's own (the session's shared broker is never
frozen or restarted). The buses are built from Settings as `stream up` builds them
(RECSYS_BUS_SOCKET_TIMEOUT_SECONDS small, RECSYS_KAFKA_TOPICS=create)."""
import time
import uuid

import pytest

from recsys.core.data.event_store import RAW_ZONE, read_window
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from recsys.core.errors import ConfigError
from recsys.core.settings import Settings
from recsys.streaming.lake_sink import LakeSink, SinkConfig
from recsys.streaming.runtime import build_bus
from tests.streaming.conftest import collector_client, rich_event
from tests.streaming.kafka_broker import TEST_SESSION_TIMEOUT_MS, TansuBroker

pytestmark = pytest.mark.integration

TIMEOUT = 1.5  # RECSYS_BUS_SOCKET_TIMEOUT_SECONDS of these tests


@pytest.fixture
def broker(tmp_path):
    instance = TansuBroker(tmp_path / "broker.log").start()
    yield instance
    instance.stop()


def kafka_settings(broker: TansuBroker, **overrides) -> Settings:
    values = dict(event_bus="kafka", kafka_bootstrap=broker.bootstrap, kafka_partitions=2,
                  kafka_replication_factor=1, kafka_idempotent_producer=False,
                  kafka_session_timeout_seconds=TEST_SESSION_TIMEOUT_MS / 1000,
                  bus_socket_timeout_seconds=TIMEOUT,
                  event_stream=f"test.{uuid.uuid4().hex[:8]}")
    values.update(overrides)
    return Settings(**values)


def batch(first: int, size: int = 3) -> list[dict]:
    return [rich_event(n, user_id=f"u{n % 4}") for n in range(first, first + size)]


def on_topic(bus, seconds: float = 6.0) -> list[str]:
    """Every event id on the bus's topic (read by a group of its own), with repeats."""
    group, ids = f"check-{uuid.uuid4().hex[:6]}", []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = bus.read(group, "c", 1000, 300)
        ids += [m.row["event_id"] for m in got]
        if ids and not got:
            break
    return ids


def test_a_frozen_broker_answers_503_within_the_bus_timeout_and_202_after_it_resumes(
        broker, tmp_path):
    bus = build_bus(kafka_settings(broker))
    client = collector_client(bus)
    acknowledged: set[str] = set()
    response = client.post("/events", json=batch(0))
    assert response.status_code == 202
    acknowledged |= {"e0", "e1", "e2"}

    assert bus.ping()
    broker.freeze()
    started = time.monotonic()
    assert not bus.ping(timeout_seconds=1.0)  # a frozen broker is not "up" for /health
    assert time.monotonic() - started < 2.5
    refused = []
    for first in (10, 20):
        started = time.monotonic()
        response = client.post("/events", json=batch(first))
        elapsed = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert elapsed < TIMEOUT + 1.5, elapsed  # within the bus timeout, not a minute
        assert int(response.headers["Retry-After"]) >= 1
        # handed to the broker and never acknowledged: maybe stored, never "accepted"
        assert response.json()["stored"] == "unknown"
        assert "did not acknowledge" in response.json()["error"]
        refused.append(first)

    broker.resume()  # the same collector, not restarted
    deadline = time.monotonic() + 10
    while not bus.ping() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert bus.ping()
    for first in refused:  # the client's resend, same event ids
        deadline = time.monotonic() + 10
        response = client.post("/events", json=batch(first))
        while response.status_code != 202 and time.monotonic() < deadline:
            time.sleep(0.3)
            response = client.post("/events", json=batch(first))
        assert response.status_code == 202, response.text
        acknowledged |= {f"e{n}" for n in range(first, first + 3)}
    response = client.post("/events", json=batch(30))
    assert response.status_code == 202
    acknowledged |= {"e30", "e31", "e32"}

    ids = on_topic(bus)
    assert set(ids) == acknowledged  # every 202 is on the topic, nothing else is
    # what was acknowledged at the first try is there once; the sends answered "unknown"
    # reached the broker's socket before it froze and were stored when it resumed, so
    # their resend may be a second copy on the topic (Kafka has no per-event de-dup)...
    for event_id in ("e0", "e1", "e2", "e30", "e31", "e32"):
        assert ids.count(event_id) == 1, (event_id, ids)
    assert all(ids.count(event_id) <= 2 for event_id in acknowledged)
    # ...which the lake sink keeps once
    lake = Lake(str(tmp_path / "lake"))
    LakeSink(bus, lake, SinkConfig(block_ms=1000)).run(idle_exit_polls=3)
    landed = read_window(lake, RAW_ZONE, RAW_EVENT_SCHEMA)
    assert sorted(landed["event_id"]) == sorted(acknowledged)
    bus.close()


def test_a_broker_restarted_empty_loses_its_events_and_a_worker_start_makes_the_topics_again(
        broker):
    """Memory storage: a restart loses the topics and every event on them, acknowledged or
    not (the broker's durability, not the project's). A worker's start with
    RECSYS_KAFKA_TOPICS=create makes the topics again with the settings' partitions, and
    the running collector answers 202 on them without a restart."""
    settings = kafka_settings(broker)
    collector_bus = build_bus(settings)
    client = collector_client(collector_bus)
    assert client.post("/events", json=batch(0)).status_code == 202

    broker.stop()
    broker.start()  # same port, empty
    with pytest.raises(ConfigError, match="missing"):  # RECSYS_KAFKA_TOPICS=check refuses
        build_bus(settings.model_copy(update={"kafka_topics": "check"}))
    worker_bus = build_bus(settings)  # a worker's start: create
    build_bus(settings.model_copy(update={"kafka_topics": "check"})).close()  # as set

    deadline = time.monotonic() + 10
    response = client.post("/events", json=batch(10))
    while response.status_code != 202 and time.monotonic() < deadline:
        time.sleep(0.3)
        response = client.post("/events", json=batch(10))
    assert response.status_code == 202, response.text
    assert sorted(on_topic(worker_bus)) == ["e10", "e11", "e12"]  # e0-e2: lost with the broker
    collector_bus.close()
    worker_bus.close()


def test_a_publish_to_a_broker_restarted_empty_is_refused_until_a_worker_creates_the_topic(
        broker):
    """The producer never lets the broker create a missing topic its own way (its default
    partitions would make every worker's start refuse the topic): after an empty restart the
    collector answers 503 until a worker's start creates the topic as the settings say."""
    settings = kafka_settings(broker)
    collector_bus = build_bus(settings)
    client = collector_client(collector_bus)
    assert client.post("/events", json=batch(0)).status_code == 202

    broker.stop()
    broker.start()
    refused = client.post("/events", json=batch(10))
    assert refused.status_code == 503, refused.text
    worker_bus = build_bus(settings)  # RECSYS_KAFKA_TOPICS=create: the topic as set
    assert worker_bus.producer.partitions(settings.event_stream) == 2
    deadline = time.monotonic() + 15
    response = client.post("/events", json=batch(10))
    while response.status_code != 202 and time.monotonic() < deadline:
        time.sleep(0.3)
        response = client.post("/events", json=batch(10))
    assert response.status_code == 202, response.text
    assert sorted(set(on_topic(worker_bus))) == ["e10", "e11", "e12"]
    collector_bus.close()
    worker_bus.close()
