"""Who may write events: write keys (rotated without a restart), shop origins, rates."""
import argparse
import ipaddress
import math
import os
import time
import uuid

import pytest
import yaml
from fastapi.testclient import TestClient

from recsys.core.errors import ConfigError
from recsys.core.online.bearer_keys import BearerKeys, embedded_key_file
from recsys.core.settings import Settings
from recsys.streaming.access import KEY_FILE_NAME, EventBudgets, RateLimiter
from recsys.streaming.collector import CollectorAccess, create_app
from recsys.streaming.redis_bus import RedisStreamBus
from recsys.streaming.runtime import a_write_key, collector_access
from tests.conftest import REPO
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


def events(first, count):
    return [event(n) for n in range(first, first + count)]


@pytest.mark.integration
def test_the_rate_counts_events_not_requests(bus):
    # 5 events/s (25 at once): a client posting 1000-event batches used to get every one in
    client = TestClient(create_app(bus, keyed_access(rate_per_second=5)), headers=AUTH)
    too_big = client.post("/events", json=events(0, 1000))
    assert too_big.status_code == 413 and "at most 25 at once" in too_big.json()["error"]
    assert client.post("/events", json=events(0, 20)).json()["accepted"] == 20
    over = client.post("/events", json=events(20, 10))  # 5 left: the whole batch waits
    assert over.status_code == 429 and over.headers["Retry-After"] == "1"
    assert over.json()["stored"] == 0
    assert client.post("/events", json=events(20, 5)).json()["accepted"] == 5
    assert client.post("/events", json=events(25, 1)).status_code == 429  # nothing left
    assert bus.client.xlen(bus.stream) == 25


@pytest.mark.integration
def test_one_client_cannot_use_up_the_keys_budget(bus):
    app = create_app(bus, keyed_access(rate_per_second=100, client_rate_per_second=10))
    greedy = TestClient(app, headers=AUTH, client=("198.51.100.1", 40000))
    shopper = TestClient(app, headers=AUTH, client=("198.51.100.2", 40000))
    answers = [greedy.post("/events", json=events(50 * n, 50)) for n in range(20)]
    assert sum(a.json().get("accepted", 0) for a in answers) == 50  # its own 5 s of 10/s
    assert {a.status_code for a in answers[1:]} == {429}
    assert shopper.post("/events", json=events(5000, 50)).json()["accepted"] == 50


def test_a_request_takes_its_events_from_both_budgets_or_from_neither():
    now = [0.0]
    budgets = EventBudgets(RateLimiter(10, 100, clock=lambda: now[0]),
                           RateLimiter(2, 20, clock=lambda: now[0]))
    assert budgets.largest_batch == 20 and budgets.take("k", "a", 21) == math.inf
    assert budgets.take("k", "a", 15) == 0
    assert budgets.take("k", "a", 10) == pytest.approx(2.5)  # the client's 5 left
    assert budgets.take("k", "b", 20) == 0  # the key kept the 10 the refusal did not take
    assert budgets.per_key.wait("k", 65) == 0 and budgets.per_key.wait("k", 66) > 0
    now[0] += 2.5
    assert budgets.wait("k", "a") == 0 and budgets.take("k", "a", 10) == 0


@pytest.fixture
def proxied(tmp_path):
    """The collector as `recsys stream collector` serves it (uvicorn's proxy-headers
    middleware), trusting 10.0.0.1 only, 2 events/s (10 at once) per client address."""
    from recsys.cli.stream_commands import _collector_server

    stream = f"test:{uuid.uuid4().hex[:8]}"
    settings = Settings(state_dir=tmp_path, collector_write_keys="test-write-key",
                        collector_client_rate_per_second=2, event_stream=stream,
                        collector_forwarded_allow_ips="10.0.0.1", allow_volatile_bus=True)
    args = argparse.Namespace(host="127.0.0.1", port=0, max_event_age_days=7.0)
    server = _collector_server(args, settings)
    server.config.load()
    yield server.config.loaded_app
    RedisStreamBus(stream=stream).reset()


@pytest.mark.integration
def test_x_forwarded_for_names_the_client_only_from_a_trusted_proxy(proxied):
    def post(peer, forwarded_for, first):
        client = TestClient(proxied, headers=AUTH, client=(peer, 40000))
        return client.post("/events", json=events(first, 10),
                           headers={"X-Forwarded-For": forwarded_for}).status_code

    # through the ingress (trusted): each shopper has a budget of its own
    assert post("10.0.0.1", "198.51.100.1", 0) == 202
    assert post("10.0.0.1", "198.51.100.2", 10) == 202
    assert post("10.0.0.1", "198.51.100.1", 20) == 429
    # a client reaching the port itself cannot pick a new address per request
    assert post("192.0.2.7", "198.51.100.3", 30) == 202
    assert post("192.0.2.7", "198.51.100.4", 40) == 429
    # nor by writing the ingress's header itself: the ingress appends the real peer
    assert post("10.0.0.1", "198.51.100.9, 192.0.2.7", 50) == 429


def test_the_trusted_proxies_come_from_the_settings_and_the_manifest(monkeypatch):
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.42.0.0/16")
    assert Settings().collector_forwarded_allow_ips == "10.42.0.0/16"
    monkeypatch.setenv("RECSYS_COLLECTOR_FORWARDED_ALLOW_IPS", "10.244.0.0/16")
    assert Settings().collector_forwarded_allow_ips == "10.244.0.0/16"
    manifest = REPO / "infra" / "k8s" / "base" / "collector.yaml"
    deployment = next(d for d in yaml.safe_load_all(manifest.read_text())
                      if d and d["kind"] == "Deployment")
    env = {e["name"]: e.get("value")
           for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    trusted = env["RECSYS_COLLECTOR_FORWARDED_ALLOW_IPS"].split(",")
    assert "*" not in trusted and all(ipaddress.ip_network(n.strip()) for n in trusted)


@pytest.mark.integration
def test_a_request_the_bus_could_not_store_does_not_use_up_the_budget():
    down = RedisStreamBus("redis://127.0.0.1:1/0", socket_timeout=0.3)
    client = TestClient(create_app(down, keyed_access(client_rate_per_second=2)), headers=AUTH)
    answers = [client.post("/events", json=events(0, 10)).status_code for _ in range(3)]
    assert answers == [503, 503, 503]  # the retries of a client waiting for the bus
