"""The session processor and serving's session read against an online-store Redis that
restarts empty or refuses writes: a redis-server of the test's own behind the production
profile (the Feast registry on PostgreSQL, the processor's state on the shared Redis)."""
import time
import uuid

import pandas as pd
import pytest
import redis

from recsys.core.settings import Settings
from recsys.feature_repo.features.session_reader import SessionReader
from recsys.feature_repo.features.session_writer import SessionFeatureWriter
from recsys.feature_repo.features.store import apply_repo, open_store
from recsys.streaming.processor import ProcessorConfig, SessionProcessor
from recsys.streaming.redis_bus import RedisStreamBus
from recsys.tools.local_services import RedisServer, temporary_postgres_database
from tests.feature_repo.conftest import write_tables
from tests.streaming.test_processor import event

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def online(tmp_path):
    """(the online store's redis-server, the Feast store on it, a processor pushing to it)."""
    server = RedisServer(tmp_path / "online", durable=False)
    server.start()
    bus = RedisStreamBus(stream=f"test:{uuid.uuid4().hex[:8]}")
    write_tables(tmp_path / "lake", pd.Timestamp.now(tz="UTC").floor("s"))
    try:
        with temporary_postgres_database("feast_faults") as registry_url:
            settings = Settings(state_dir=tmp_path / "state", lake_uri=str(tmp_path / "lake"),
                                redis_url=server.url, feast_registry_url=registry_url)
            store, repo = open_store(settings, profile="production")
            apply_repo(store, repo)
            processor = SessionProcessor(
                bus, bus.client, SessionFeatureWriter(store).write,
                config=ProcessorConfig(namespace=bus.stream, block_ms=10,
                                       reclaim_idle_ms=60_000))
            yield server, store, processor
    finally:
        keys = list(bus.client.scan_iter(match=f"{bus.stream}:*"))
        if keys:
            bus.client.delete(*keys)
        bus.reset()
        server.crash()


def drain(processor, failures: list[str] | None = None, attempts: int = 20) -> int:
    """Poll until the stream is empty, retrying Redis errors as the supervisor does (each
    one recorded in `failures`)."""
    handled = 0
    for _ in range(attempts):
        try:
            while batch := processor.poll():
                handled += batch
            return handled
        except redis.RedisError as error:
            if failures is None:
                raise
            failures.append(str(error))
    raise AssertionError(f"still failing after {attempts} polls: {failures[-1]}")


def test_an_online_store_restarted_empty_is_filled_again_by_the_next_events(online):
    server, store, processor = online
    reader = SessionReader(store)
    now = int(time.time() * 1000)
    processor.bus.publish([event(1, "alice", "view", now - 3000),
                           event(2, "alice", "view", now - 2000)])
    drain(processor)
    assert reader.read("alice").recent_items == ["p1", "p2"]

    server.crash()
    server.start()  # the same port, nothing kept
    assert redis.Redis(port=server.port).dbsize() == 0
    assert reader.read("alice") is None  # serving answers without a session

    processor.bus.publish([event(3, "alice", "view", now - 1000)])
    failures: list[str] = []
    assert drain(processor, failures) == 1
    assert reader.read("alice").recent_items == ["p1", "p2", "p3"]  # state kept in the bus


def test_an_online_store_refusing_writes_keeps_the_batch_pending_until_it_takes_them(online):
    server, store, processor = online
    reader = SessionReader(store)
    admin = redis.Redis(port=server.port)
    now = int(time.time() * 1000)
    admin.config_set("min-replicas-to-write", 1)  # a lone Redis now refuses every write
    processor.bus.publish([event(1, "bob", "view", now - 3000),
                           event(2, "carol", "view", now - 2500),
                           event(3, "bob", "view", now - 2000)])
    for _ in range(3):  # the supervisor's retries while the refusal lasts
        with pytest.raises(redis.RedisError, match="NOREPLICAS"):
            processor.poll()
        assert processor.bus.pending(processor.config.group) == 3  # nothing acknowledged
    assert processor.stats.messages == 0
    assert admin.dbsize() == 0 and reader.read("bob") is None

    admin.config_set("min-replicas-to-write", 0)
    assert drain(processor) == 3
    assert processor.bus.pending(processor.config.group) == 0
    assert reader.read("bob").recent_items == ["p1", "p3"]
    assert reader.read("carol").recent_items == ["p2"]
