"""The two cache tiers: a bounded in-process LRU with the TTL, and writes to Redis that
leave the request path, bounded and counted."""
import pytest
import redis

from recsys.serving.cache import RecommendationCache


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_the_local_tier_keeps_the_most_recent_lists_for_the_ttl():
    clock = Clock()
    cache = RecommendationCache(None, ttl_seconds=60, local_entries=2, clock=clock)
    cache.set("a", {"items": [1]})
    cache.set("b", {"items": [2]})
    assert cache.get("a") == {"items": [1]}  # a is now the most recently used
    cache.set("c", {"items": [3]})  # the bound: b, the least recently used, goes
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == ({"items": [1]}, {"items": [3]})
    clock.now = 59.9
    assert cache.get("a") == {"items": [1]}
    clock.now = 60.0
    assert cache.get("a") is None and cache.get("c") is None
    assert len(cache._local) == 0  # expired entries are removed when met


def test_hits_are_copies_and_a_zero_ttl_caches_nothing():
    cache = RecommendationCache(None, ttl_seconds=60)
    cache.set("k", {"items": ["x"]})
    cache.get("k")["items"].append("y")  # a caller changing its answer
    assert cache.get("k") == {"items": ["x"]}
    off = RecommendationCache(None, ttl_seconds=0)
    off.set("k", {"items": ["x"]})
    assert off.get("k") is None


@pytest.mark.integration
def test_writes_wait_in_a_bounded_queue_and_the_excess_is_counted():
    """A slow Redis (writes paused by CLIENT PAUSE): requests never wait for it."""
    client = redis.Redis(host="127.0.0.1", port=6379, db=9)
    client.flushdb()
    cache = RecommendationCache(client, ttl_seconds=60, pending_writes=2)
    client.client_pause(1500, all=False)  # write commands wait 1.5 s
    cache.set("first", {})  # taken by the writer, which then waits on the server
    assert not cache.flush(timeout=0.3)
    for key in ("q1", "q2", "q3", "q4"):
        cache.set(key, {})
    assert cache.dropped_writes == 2  # q3, q4: the queue holds two
    assert cache.get("q4") == {}  # the local tier has every list all the same
    assert cache.flush(timeout=10)
    assert sorted(k.decode() for k in client.keys("*")) == ["first", "q1", "q2"]
    client.flushdb()


@pytest.mark.integration
def test_writes_reach_redis_in_pipelines_with_the_ttl():
    client = redis.Redis(host="127.0.0.1", port=6379, db=9)
    client.flushdb()
    cache = RecommendationCache(client, ttl_seconds=30, local_entries=0)
    for n in range(600):
        cache.set(f"recs:{n}", {"n": n})
    assert cache.flush()
    assert client.dbsize() == 600 and 0 < client.ttl("recs:599") <= 30
    assert cache.get("recs:7") == {"n": 7}  # no local tier: read from Redis
    client.flushdb()
