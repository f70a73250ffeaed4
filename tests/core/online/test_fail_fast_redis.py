"""A Redis that stops answering costs a request one attempt, then the request degrades.

`stalled_redis` is a TCP listener that accepts connections and never replies: what a hung
or overloaded Redis looks like from the client. Counting its connections tells how many
attempts a command made (redis-py 7's default retries would make four, seconds apart)."""
import socket
import threading

import pytest
import redis

from recsys.core.online.fail_fast_redis import OPEN, CircuitOpen, fail_fast_client
from recsys.core.settings import Settings
from recsys.feature_repo.features.store import apply_repo, open_store
from recsys.serving.build import _session_reader
from recsys.serving.cache import RecommendationCache
from recsys.serving.config import ServiceConfig
from recsys.serving.metrics import ServiceMetrics
from recsys.tools.local_services import temporary_postgres_database


class StalledRedis:
    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)  # held open, never answered

    def close(self):
        self.listener.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def stalled_redis():
    server = StalledRedis()
    yield server
    server.close()


def test_the_cache_on_a_stalled_redis_tries_once_then_serves_from_the_local_tier(stalled_redis):
    client = fail_fast_client(f"redis://127.0.0.1:{stalled_redis.port}/0", 0.05)
    cache = RecommendationCache(client, 60)
    assert cache.get("k") is None
    assert len(stalled_redis.connections) == 1 and cache.errors == 1
    cache.set("k", {"x": 1})
    assert cache.flush(timeout=5)  # the write failed once, it did not wait on retries
    assert cache.errors == 2 and len(stalled_redis.connections) == 2
    assert cache.get("k") == {"x": 1}


def test_after_three_timeouts_the_cache_skips_a_stalled_redis_and_counts_the_open(
        stalled_redis):
    metrics = ServiceMetrics()
    config = ServiceConfig(redis_breaker_cool_down_seconds=3600)
    breaker = metrics.redis_breaker("cache", config)
    client = fail_fast_client(f"redis://127.0.0.1:{stalled_redis.port}/0", 0.05, breaker)
    cache = RecommendationCache(client, 60, local_entries=0)
    assert [cache.get(f"k{n}") for n in range(3)] == [None] * 3
    assert len(stalled_redis.connections) == 3 and breaker.state == OPEN
    assert [cache.get(f"k{n}") for n in range(20)] == [None] * 20
    cache.set("k", {"x": 1})
    assert cache.flush(timeout=5)
    assert len(stalled_redis.connections) == 3  # nothing more reached it
    assert cache.errors == 4  # the three timeouts and the skipped write (the skipped reads
    # are not errors: the breaker logged why once)
    with pytest.raises(CircuitOpen):
        client.pipeline().set("k", "v").execute()
    assert metrics.breaker_opens.labels("cache")._value.get() == 1
    assert metrics.breaker_open.labels("cache")._value.get() == 1


def test_the_seldon_v1_cache_skips_a_stalled_redis_too(stalled_redis, tmp_path):
    from recsys.serving.seldon_v1 import _cache

    cache = _cache(Settings(state_dir=tmp_path,
                            redis_url=f"redis://127.0.0.1:{stalled_redis.port}/0"))
    assert [cache.get(f"k{n}") for n in range(10)] == [None] * 10
    assert len(stalled_redis.connections) == ServiceConfig().redis_breaker_failures


def test_redis_py_alone_would_retry_a_stalled_redis(stalled_redis):
    """Why the request path needs its own clients: the library default tries four times."""
    client = redis.Redis(host="127.0.0.1", port=stalled_redis.port, socket_timeout=0.05)
    client.get_retry()._backoff = redis.backoff.NoBackoff()  # the count, not the waits
    with pytest.raises(redis.TimeoutError):
        client.get("k")
    assert len(stalled_redis.connections) == 4


@pytest.mark.integration
def test_a_stalled_online_store_costs_a_session_read_one_attempt(stalled_redis, tmp_path):
    with temporary_postgres_database("feast_stalled") as registry_url:
        settings = Settings(state_dir=tmp_path / "state", lake_uri=str(tmp_path / "lake"),
                            redis_url="redis://127.0.0.1:6379/7", feast_profile="production",
                            feast_registry_url=registry_url)
        store, repo = open_store(settings)
        apply_repo(store, repo)  # the registry knows the views; the online store then stalls
        stalled = settings.model_copy(
            update={"redis_url": f"redis://127.0.0.1:{stalled_redis.port}/0"})
        metrics = ServiceMetrics()
        reader = _session_reader(stalled, ServiceConfig(redis_breaker_failures=2), metrics)
        with pytest.raises(redis.TimeoutError):
            reader.read("u1")
        assert len(stalled_redis.connections) == 1
        with pytest.raises(redis.TimeoutError):
            reader.read("u2")
        with pytest.raises(CircuitOpen):  # two in a row: the online store is skipped
            reader.read("u3")
        assert len(stalled_redis.connections) == 2
        assert metrics.breaker_opens.labels("online_store")._value.get() == 1
