"""Shared helpers of the streaming tests: a collector with a known write key, a fresh Redis
stream, a valid rich event."""
import time
import uuid

import pytest
from fastapi.testclient import TestClient

from recsys.core.online.bearer_keys import BearerKeys
from recsys.streaming.collector import CollectorAccess, create_app

WRITE_KEY = "test-write-key"
AUTH = {"Authorization": f"Bearer {WRITE_KEY}"}


def keyed_access(**options) -> CollectorAccess:
    """The collector's access with the test key; the rates are open unless `options` set
    them (replays post thousands of events from one address)."""
    options.setdefault("rate_per_second", 1_000_000.0)
    options.setdefault("client_rate_per_second", 1_000_000.0)
    return CollectorAccess(BearerKeys([WRITE_KEY]), **options)



def collector_client(bus, limits=None, access=None, observed=None) -> TestClient:
    """A TestClient of the collector that sends the write key on every request."""
    return TestClient(create_app(bus, access or keyed_access(), limits, observed=observed),
                      headers=AUTH)


@pytest.fixture
def bus():
    """A Redis Streams bus on a stream of its own, removed afterwards (with its dead
    letters)."""
    from recsys.streaming.redis_bus import RedisStreamBus

    instance = RedisStreamBus(stream=f"test:{uuid.uuid4().hex[:8]}")
    yield instance
    instance.dead_letter_bus().reset()
    instance.reset()


def rich_event(n, **overrides) -> dict:
    """A valid event received a second ago (`overrides` replace top-level fields)."""
    body = {"event_id": f"e{n}", "user_id": f"u{n}", "event_type": "view",
            "timestamp": int(time.time() * 1000) - 1000, "properties": {"product_id": "p1"}}
    body.update(overrides)
    return body


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory):
    """A Kafka broker shared by the session's Kafka tests: RECSYS_KAFKA_BOOTSTRAP when it
    names one (a real Kafka), else a Tansu broker started here on a free port."""
    import os

    from tests.streaming.kafka_broker import TansuBroker

    external = os.environ.get("RECSYS_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    broker = TansuBroker(tmp_path_factory.mktemp("tansu") / "broker.log").start()
    yield broker.bootstrap
    broker.stop()


def kafka_test_bus(bootstrap: str, partitions: int = 3, **options):
    """A Kafka bus on a topic of its own (created with `partitions`), consumers with the
    tests' short session timeout."""
    from recsys.streaming.kafka_bus import KafkaBus
    from recsys.streaming.kafka_topics import ensure_topics, event_topics
    from tests.streaming.kafka_broker import TEST_SESSION_TIMEOUT_MS

    topic = f"test.{uuid.uuid4().hex[:8]}"
    ensure_topics(event_topics(topic, partitions, 1, 3_600_000, "delete"), bootstrap, {})
    options.setdefault("session_timeout_ms", TEST_SESSION_TIMEOUT_MS)
    return KafkaBus(bootstrap, topic=topic, **options)
