"""The collector's beacon form, `POST /events/beacon?key=<write key>` with a `text/plain`
body (what `navigator.sendBeacon` sends), over a real Redis: it lands what `POST /events`
lands and answers what it answers (the same code after the key: a property test over
arbitrary bodies compares the two paths answer for answer); only a write key opens it (no
serving, admin or metrics token, and the key opens nothing else); a browser's `Origin` must
be one of the shop's."""
import json
import time
import uuid

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recsys.core.online.bearer_keys import BearerKeys
from recsys.core.settings import Settings
from recsys.streaming.bus import BusOutcomeUnknown
from recsys.streaming.collector import BEACON_PATH, CollectorLimits, create_app
from recsys.streaming.openapi import add_route
from recsys.streaming.redis_bus import RedisStreamBus
from recsys.streaming.runtime import collector_access
from recsys.streaming.user_binding import UserBinding, sign_user
from tests.streaming.conftest import AUTH, WRITE_KEY, keyed_access, rich_event
from tests.streaming.test_collector import JSON_VALUES, event_like

pytestmark = pytest.mark.integration
SHOP = "https://shop.example"
TEXT = {"Content-Type": "text/plain;charset=UTF-8"}  # what sendBeacon sends for a string
URL = f"{BEACON_PATH}?key={WRITE_KEY}"


@pytest.fixture
def bus():
    instance = RedisStreamBus(stream=f"test:beacon:{uuid.uuid4().hex[:8]}")
    yield instance
    instance.dead_letter_bus().reset()
    instance.reset()


def beacon_client(bus, access=None, limits=None) -> TestClient:
    """A TestClient of the collector that sends no Authorization header."""
    return TestClient(create_app(bus, access or keyed_access(allowed_origins=(SHOP,)),
                                 limits or CollectorLimits(max_body_bytes=20_000,
                                                           max_batch=50)))


def stored(bus) -> list[dict]:
    return [m.row for m in bus.read("check", "c", 100, 100)]


def test_a_beacon_lands_what_the_json_path_lands(bus):
    events = [rich_event(1, session_id="s1", context={"page": {"url": f"{SHOP}/p/1"},
                                                      "campaign": {"utm_source": "news"}}),
              rich_event(2, event_type="click", properties={
                  "product_id": "p2", "source": "recommendations", "recommendation_id": "r1"})]
    client = beacon_client(bus)
    answer = client.post(URL, content=json.dumps(events), headers={**TEXT, "Origin": SHOP})
    assert answer.status_code == 202
    assert answer.json() == {"accepted": 2, "duplicates": 0, "rejected": 0}
    assert answer.headers["access-control-allow-origin"] == SHOP
    rows = stored(bus)
    # the same events through POST /events on a bus of their own: the same rows
    other = RedisStreamBus(stream=f"test:beacon:{uuid.uuid4().hex[:8]}")
    try:
        json_answer = beacon_client(other).post("/events", json=events, headers=AUTH)
        assert json_answer.json() == answer.json()
        assert stored(other) == rows
    finally:
        other.reset()
    assert [r["event_type"] for r in rows] == ["view", "click"]
    assert rows[0]["utm_source"] == "news" and rows[1]["recommendation_id"] == "r1"
    # NDJSON lines as text, and the JSON media types, are read too
    ndjson = "\n".join(json.dumps(rich_event(n)) for n in (3, 4))
    assert client.post(URL, content=ndjson, headers=TEXT).json()["accepted"] == 2
    assert client.post(URL, json=rich_event(5)).json()["accepted"] == 1
    # a retried beacon (same event ids) is counted as duplicates, stored once
    again = client.post(URL, content=json.dumps(events), headers=TEXT)
    assert again.json() == {"accepted": 0, "duplicates": 2, "rejected": 0}
    assert bus.client.xlen(bus.stream) == 5


@pytest.mark.parametrize("url, headers", [
    (BEACON_PATH, {}),
    (f"{BEACON_PATH}?key=", {}),
    (f"{BEACON_PATH}?key=wrong-key", {}),
    (f"{BEACON_PATH}?key={WRITE_KEY}x", {}),
    (f"{BEACON_PATH}?key=Bearer%20{WRITE_KEY}", {}),
    (f"{BEACON_PATH}?Key={WRITE_KEY}", {}),
    (BEACON_PATH, AUTH),                     # the beacon path reads its key from the URL only
    (f"/events?key={WRITE_KEY}", {}),        # and POST /events never from the URL
])
def test_a_missing_or_wrong_key_is_401_and_stores_nothing(bus, url, headers):
    client = beacon_client(bus)
    answer = client.post(url, content=json.dumps(rich_event(1)), headers={**TEXT, **headers,
                                                                           "Origin": SHOP})
    assert answer.status_code == 401 and "write key" in answer.json()["error"]
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert bus.client.xlen(bus.stream) == 0
    assert client.app.state.counters.unauthorized == 1


def test_only_a_write_key_opens_the_beacon_and_it_opens_nothing_else(bus, tmp_path):
    """The collector as `recsys stream collector` builds its access from the settings: the
    serving, admin and metrics tokens of the same settings are not write keys, and a write
    key in a URL reads no metrics, stats or OpenAPI document."""
    config = Settings(state_dir=tmp_path / "state", collector_write_keys="shop-write-key",
                      serving_token="serving-token", serving_admin_token="admin-token",
                      metrics_token="metrics-token", collector_allowed_origins=SHOP)
    access = collector_access(config)
    app = create_app(bus, access)
    add_route(app, access)
    client = TestClient(app)
    body = json.dumps(rich_event(1))
    for token in ("serving-token", "admin-token", "metrics-token"):
        answer = client.post(f"{BEACON_PATH}?key={token}", content=body, headers=TEXT)
        assert answer.status_code == 401, token
        answer = client.post("/events", content=body, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        assert answer.status_code == 401, token
    assert bus.client.xlen(bus.stream) == 0
    for path in ("/metrics", "/stats", "/openapi.json"):
        assert client.get(f"{path}?key=shop-write-key").status_code == 401, path
        assert client.get(path, headers={"Authorization": "Bearer metrics-token"}) \
            .status_code == 200, path
    for path in ("/metrics", "/stats"):  # the OpenAPI document is the one a write key reads
        assert client.get(path, headers={"Authorization": "Bearer shop-write-key"}) \
            .status_code == 401, path
    answer = client.post(f"{BEACON_PATH}?key=shop-write-key", content=body, headers=TEXT)
    assert answer.status_code == 202 and bus.client.xlen(bus.stream) == 1


def test_a_browser_origin_must_be_one_of_the_shops(bus):
    client = beacon_client(bus)
    body = json.dumps(rich_event(1))
    for origin in ("https://evil.example", "null", f"{SHOP}.evil.example", "http://shop.example"):
        answer = client.post(URL, content=body, headers={**TEXT, "Origin": origin})
        assert answer.status_code == 403 and "allowed origins" in answer.json()["error"]
        assert "access-control-allow-origin" not in answer.headers
    assert bus.client.xlen(bus.stream) == 0
    assert client.post(URL, content=body, headers={**TEXT, "Origin": SHOP}).status_code == 202
    # no Origin: not a browser; the key decides, as on POST /events
    assert client.post(URL, content=json.dumps(rich_event(2)), headers=TEXT).status_code == 202
    # no allowed origins configured: no browser may post (as without CORS on POST /events)
    closed = beacon_client(bus, access=keyed_access())
    answer = closed.post(URL, content=json.dumps(rich_event(3)), headers={**TEXT,
                                                                          "Origin": SHOP})
    assert answer.status_code == 403
    anywhere = beacon_client(bus, access=keyed_access(allowed_origins=("*",)))
    answer = anywhere.post(URL, content=json.dumps(rich_event(4)),
                           headers={**TEXT, "Origin": "https://any.example"})
    assert answer.status_code == 202
    assert bus.client.xlen(bus.stream) == 3


def test_the_body_and_batch_limits_answer_413(bus):
    client = beacon_client(bus)
    answer = client.post(URL, content=b"x" * 20_001, headers=TEXT)
    assert answer.status_code == 413 and "max_body_bytes" in answer.json()["error"]

    def chunks():  # no Content-Length: the limit holds while the body is read
        for _ in range(30):
            yield b" " * 1000

    answer = client.post(URL, content=chunks(), headers=TEXT)
    assert answer.status_code == 413 and "exceeds" in answer.json()["error"]
    answer = client.post(URL, content=json.dumps([rich_event(n) for n in range(51)]),
                         headers=TEXT)
    assert answer.status_code == 413 and "max_batch" in answer.json()["error"]
    assert bus.client.xlen(bus.stream) == 0


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "text/html", ""])
def test_other_media_types_are_415(bus, content_type):
    answer = beacon_client(bus).post(URL, content=json.dumps(rich_event(1)),
                                     headers={"Content-Type": content_type})
    assert answer.status_code == 415 and answer.json()["field"] == "Content-Type"
    assert "text/plain" in answer.json()["error"] and bus.client.xlen(bus.stream) == 0


def test_unreadable_text_is_400_and_bad_events_are_dead_lettered_as_on_the_json_path(bus):
    client = beacon_client(bus)
    for body, text in ((b"{not json", "not valid JSON"), (b"", "empty"), (b"\xff\xfe", "JSON"),
                       (b'{"a": 1}\n{oops', "NDJSON line 2")):
        answer = client.post(URL, content=body, headers=TEXT)
        assert answer.status_code == 400 and text in answer.json()["error"], body
        assert answer.json()["field"] == "body"
    now = int(time.time() * 1000)
    answer = client.post(URL, content=json.dumps([
        rich_event(1), rich_event(2, event_type="teleport"),
        rich_event(3, properties={"price": 1.0}), rich_event(4, timestamp=now - 10 * 86_400_000),
        rich_event(5, timestamp=now + 3_600_000)]), headers=TEXT)
    assert answer.status_code == 422
    body = answer.json()
    assert body["accepted"] == 1 and body["rejected"] == 4
    assert [e["errors"][0]["field"] for e in body["errors"]] == [
        "event_type", "properties.product_id", "timestamp", "timestamp"]
    dead = bus.dead_letters()
    assert [d["raw"]["event_id"] for d in dead] == ["e2", "e3", "e4", "e5"]
    assert "event_type" in dead[0]["reason"] and bus.client.xlen(bus.stream) == 1


def test_beacons_and_json_posts_share_the_rate_limits(bus):
    client = beacon_client(bus, access=keyed_access(allowed_origins=(SHOP,),
                                                    client_rate_per_second=1.0,
                                                    burst_seconds=3.0))
    assert client.post("/events", json=[rich_event(1), rich_event(2)],
                       headers=AUTH).status_code == 202
    answer = client.post(URL, content=json.dumps([rich_event(3), rich_event(4)]), headers=TEXT)
    assert answer.status_code == 429 and answer.json()["stored"] == 0
    assert int(answer.headers["Retry-After"]) >= 1
    assert bus.client.xlen(bus.stream) == 2
    answer = client.post(URL, content=json.dumps([rich_event(n) for n in range(10, 14)]),
                         headers=TEXT)
    assert answer.status_code == 413 and "smaller batches" in answer.json()["error"]


@pytest.mark.parametrize("mode", ["anonymous", "require"])
def test_user_ids_are_bound_by_the_signature_as_on_the_json_path(bus, mode):
    binding = UserBinding(mode, BearerKeys(["signing-key"], what="signing keys"))
    client = beacon_client(bus, access=keyed_access(binding=binding))
    signature = sign_user("signing-key", "u42", int(time.time()) + 600)
    signed = rich_event(1, user_id="u42", user_signature=signature, session_id="s1")
    unsigned = rich_event(2, user_id="u42", session_id="s1")
    forged = rich_event(3, user_id="u43", user_signature=signature, session_id="s1")
    answer = client.post(URL, content=json.dumps([signed, unsigned, forged]), headers=TEXT)
    users = [row["user_id"] for row in stored(bus)]
    if mode == "require":
        assert answer.status_code == 422 and answer.json()["accepted"] == 1
        assert [e["errors"][0]["field"] for e in answer.json()["errors"]] == \
            ["user_signature", "user_signature"]
        assert users == ["u42"]
    else:
        assert answer.status_code == 202 and answer.json()["anonymized"] == 2
        assert users[0] == "u42" and users[1] == users[2] != "u42"
        assert users[1].startswith("anonymous:")


def test_a_bus_that_does_not_answer_gets_503_and_the_retry_is_counted_once(bus):
    class Silent:  # stores, then loses the answer (a socket timeout after the write)
        def __init__(self, inner):
            self.inner, self.failures = inner, 1

        def publish(self, rows):
            outcome = self.inner.publish(rows)
            if self.failures:
                self.failures -= 1
                raise BusOutcomeUnknown("no answer within the socket timeout")
            return outcome

        def __getattr__(self, name):
            return getattr(self.inner, name)

    client = beacon_client(Silent(bus))
    body = json.dumps([rich_event(1), rich_event(2)])
    answer = client.post(URL, content=body, headers=TEXT)
    assert answer.status_code == 503 and answer.json()["stored"] == "unknown"
    assert answer.headers["Retry-After"] == "5"
    answer = client.post(URL, content=body, headers=TEXT)
    assert answer.json() == {"accepted": 0, "duplicates": 2, "rejected": 0}
    assert bus.client.xlen(bus.stream) == 2


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.one_of(st.lists(event_like(), max_size=3), event_like(), JSON_VALUES,
                      st.binary(max_size=300), st.text(max_size=300)),
       ndjson=st.booleans())
def test_the_beacon_answers_any_body_exactly_as_the_json_path_does(body, ndjson):
    """One code path after the key: a body sent to `POST /events` (as JSON) on one bus and
    to the beacon (as text) on another gets the same answer, stores and dead-letters the
    same."""
    buses = [RedisStreamBus(stream=f"test:beacon-fuzz:{uuid.uuid4().hex[:8]}")
             for _ in range(2)]
    try:
        json_path, beacon = (beacon_client(b) for b in buses)
        if isinstance(body, bytes):
            raw = body
        elif isinstance(body, str):
            raw = body.encode()
        elif ndjson and isinstance(body, list):
            raw = "\n".join(json.dumps(item) for item in body).encode()
        else:
            raw = json.dumps(body).encode()
        expected = json_path.post("/events", content=raw, headers={
            **AUTH, "Content-Type": "application/json"})
        answer = beacon.post(URL, content=raw, headers={**TEXT, "Origin": SHOP})
        assert answer.status_code < 500, answer.text
        assert answer.status_code in (202, 400, 413, 422)
        assert (answer.status_code, answer.json()) == (expected.status_code, expected.json())
        assert buses[1].client.xlen(buses[1].stream) == buses[0].client.xlen(buses[0].stream)
        letters = [[d["reason"] for d in b.dead_letters()] for b in buses]
        assert letters[0] == letters[1]
    finally:
        for b in buses:
            b.dead_letter_bus().reset()
            b.reset()
