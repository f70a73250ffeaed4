"""Who may write events: write keys (rotated without a restart), shop origins, rates."""
import os
import time
import uuid

import pytest
from fastapi.testclient import TestClient

from recsys.core.bearer_keys import BearerKeys, embedded_key_file
from recsys.core.errors import ConfigError
from recsys.core.settings import Settings
from recsys.streaming.access import KEY_FILE_NAME, RateLimiter
from recsys.streaming.collector import CollectorAccess, create_app
from recsys.streaming.redis_bus import RedisStreamBus
from recsys.streaming.runtime import a_write_key, collector_access
from tests.streaming.conftest import AUTH, keyed_access


def event(n):
    return {"event_id": f"e{n}", "user_id": "u1", "event_type": "view",
            "timestamp": int(time.time() * 1000) - 1000, "properties": {"product_id": "p1"}}


@pytest.fixture
def bus():
    instance = RedisStreamBus(stream=f"test:{uuid.uuid4().hex[:8]}")
    yield instance
    instance.reset()


@pytest.mark.integration
def test_without_a_valid_key_nothing_is_stored(bus):
    client = TestClient(create_app(bus, keyed_access()))
    assert client.post("/events", json=event(1)).status_code == 401
    wrong = client.post("/events", json=event(1), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
    assert client.post("/events", json=event(1), headers={"Authorization": "Basic x"}) \
        .status_code == 401
    assert bus.client.xlen(bus.stream) == 0
    assert client.post("/events", json=event(1), headers=AUTH).status_code == 202


@pytest.mark.integration
def test_keys_in_a_file_rotate_without_a_restart(bus, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("# site: shop.example\nold-key\n")
    watched = BearerKeys(path=keys, check_every_seconds=0)
    client = TestClient(create_app(bus, CollectorAccess(watched)))

    def send(key, n):
        return client.post("/events", json=event(n),
                           headers={"Authorization": f"Bearer {key}"}).status_code

    assert send("old-key", 1) == 202
    keys.write_text("old-key\nnew-key\n")  # add the new key, move the shop over ...
    assert send("new-key", 2) == 202
    keys.write_text("new-key\n")  # ... then retire the old one
    os.utime(keys, ns=(time.time_ns() + 10**9,) * 2)
    assert send("old-key", 3) == 401 and send("new-key", 4) == 202


@pytest.mark.integration
def test_only_the_shops_origins_get_a_cors_grant(bus):
    client = TestClient(create_app(bus, keyed_access(allowed_origins=("https://shop.example",))))
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    allowed = client.options("/events", headers={"Origin": "https://shop.example", **preflight})
    assert allowed.headers.get("access-control-allow-origin") == "https://shop.example"
    other = client.options("/events", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers
    posted = client.post("/events", json=event(1), headers={"Origin": "https://evil.example",
                                                            **AUTH})
    assert "access-control-allow-origin" not in posted.headers


@pytest.mark.integration
def test_a_burst_over_the_rate_gets_429_with_retry_after(bus):
    client = TestClient(create_app(bus, keyed_access(rate_per_second=2, burst_seconds=2)),
                        headers=AUTH)
    answers = [client.post("/events", json=event(n)).status_code for n in range(6)]
    assert answers[:4] == [202] * 4 and answers[4:] == [429, 429]
    limited = client.post("/events", json=event(9))
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert bus.client.xlen(bus.stream) == 4


def test_token_buckets_refill_and_stay_bounded():
    now = [0.0]
    limiter = RateLimiter(rate=10, burst=20, max_names=3, clock=lambda: now[0])
    assert all(limiter.take("a") == 0 for _ in range(20))
    assert limiter.take("a") == pytest.approx(0.1)
    now[0] += 1.0
    assert all(limiter.take("a") == 0 for _ in range(10))
    for name in ("b", "c", "d", "e"):
        limiter.take(name)
    assert len(limiter._buckets) == 3 and "a" not in limiter._buckets


def test_the_embedded_default_creates_a_private_key_once(tmp_path):
    settings = Settings(state_dir=tmp_path / "state")
    access = collector_access(settings)
    path = embedded_key_file(settings.state_dir, KEY_FILE_NAME)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    key = a_write_key(settings)
    assert len(key) >= 40 and access.write_keys.matching(f"Bearer {key}") == key
    assert a_write_key(Settings(state_dir=tmp_path / "state")) == key  # not regenerated
    assert a_write_key(Settings(collector_write_keys="k1, k2")) == "k1"
    with pytest.raises(ConfigError, match="at least one key is needed"):
        BearerKeys([])
