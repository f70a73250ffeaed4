"""Rich-format events: body forms, per-event validation naming the field."""
import json

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from recsys.core.data.personal_data import is_personal_key
from recsys.core.errors import RecsysError
from recsys.core.online.bearer_keys import BearerKeys
from recsys.streaming.events import (
    MAX_EVENT_DEPTH,
    BodyError,
    TimeBounds,
    parse_body,
    validate_events,
)
from recsys.streaming.user_binding import NO_BINDING, UserBinding

T = 1_767_225_600_000


def event(**overrides):
    base = {"event_id": "evt_1", "user_id": "u1", "session_id": "s1", "event_type": "view",
            "timestamp": T, "context": {"device": {"type": "mobile"},
                                       "campaign": {"utm_source": "google"}},
            "properties": {"product_id": "p1", "price": 12.5}}
    base.update(overrides)
    return base


def test_one_object_an_array_and_ndjson_are_all_read():
    one = json.dumps(event()).encode()
    assert len(parse_body(one)) == 1
    assert len(parse_body(json.dumps([event(), event(event_id="e2")]).encode())) == 2
    ndjson = b"\n".join([one, json.dumps(event(event_id="e2")).encode(), b""])
    assert len(parse_body(ndjson, "application/x-ndjson")) == 2
    assert len(parse_body(ndjson)) == 2  # detected without the content type


@pytest.mark.parametrize("body, message", [(b"", "empty"), (b"{nope", "not valid JSON"),
                                           (b'{"a":1}\n{broken', "line 2")])
def test_unreadable_bodies_are_named(body, message):
    with pytest.raises(BodyError, match=message):
        parse_body(body)


def test_a_valid_event_becomes_a_canonical_row():
    checked = validate_events([event(event_type="addtocart")])
    assert not checked.rejected
    row = checked.rows[0]
    assert row["item_id"] == "p1" and row["event_type"] == "add_to_cart"
    assert row["device_type"] == "mobile" and row["utm_source"] == "google"
    assert row["timestamp"] == T and row["price"] == 12.5


@pytest.mark.parametrize("bad, field", [
    ({"event_id": ""}, "event_id"),
    ({"event_type": "teleport"}, "event_type"),
    ({"timestamp": 1_700_000_000}, "timestamp"),           # seconds, not milliseconds
    ({"timestamp": "yesterday"}, "timestamp"),
    ({"user_id": None}, "user_id"),
    ({"properties": {"price": 3}}, "properties.product_id"),
    ({"properties": {"product_id": "p", "price": -1}}, "properties.price"),
])
def test_each_bad_field_is_named(bad, field):
    checked = validate_events([event(), event(**bad), "not an object"])
    assert len(checked.rows) == 1
    first, second = checked.rejected
    assert first.index == 1 and any(e["field"] == field for e in first.errors), first.errors
    assert second.index == 2 and second.errors[0]["field"] == "(event)"


def test_event_times_outside_the_bounds_are_refused_naming_the_timestamp():
    bounds = TimeBounds(received_ms=T, max_ahead_ms=300_000, max_age_ms=7 * 86_400_000)
    checked = validate_events([
        event(event_id="ok-skew", timestamp=T + 299_000),
        event(event_id="future", timestamp=T + 3_600_000),
        event(event_id="2096", timestamp=3_978_000_000_000),
        event(event_id="ancient", timestamp=T - 8 * 86_400_000),
        event(event_id="ok-old", timestamp=T - 6 * 86_400_000)], bounds)
    assert [r["event_id"] for r in checked.rows] == ["ok-skew", "ok-old"]
    refused = {r.event_id: r.errors for r in checked.rejected}
    assert refused["future"] == [{"field": "timestamp", "message":
                                  "3600 s ahead of when the collector received it "
                                  "(at most 300 s of clock skew)"}]
    assert refused["2096"][0]["field"] == "timestamp"
    assert refused["ancient"][0]["message"].startswith("8.0 days old")
    assert "ok-old" in [r["event_id"] for r in validate_events(
        [event(event_id="ok-old", timestamp=T - 600 * 86_400_000)],
        TimeBounds(received_ms=T, max_age_ms=None)).rows]


def deep(depth: int, leaf=1):
    """`leaf` inside `depth` nested objects."""
    for _ in range(depth):
        leaf = {"x": leaf}
    return leaf


def test_an_event_nested_too_deep_is_refused_alone_and_its_dead_letter_is_writable():
    # orjson reads 1024 levels but writes 254: 300 used to raise TypeError in extra_json
    checked = validate_events([event(event_id=f"ok{n}") for n in range(9)]
                              + [event(event_id="deep", debug=deep(300))])
    assert [r["event_id"] for r in checked.rows] == [f"ok{n}" for n in range(9)]
    (refused,) = checked.rejected
    assert refused.index == 9 and refused.event_id == "deep"
    assert refused.errors == [{"field": "(event)", "message": f"objects and arrays nested "
                               f"more than {MAX_EVENT_DEPTH} levels deep"}]
    kept = orjson.loads(orjson.dumps(refused.raw))  # what the dead letter stores
    assert kept["event_id"] == "deep" and kept["user_id"] == "u1"
    inner = kept["debug"]
    for _ in range(MAX_EVENT_DEPTH - 2):  # the event is level 1, `debug` level 2
        inner = inner["x"]
    assert inner == {"x": f"(nested deeper than {MAX_EVENT_DEPTH} levels)"}
    assert len(validate_events([event(debug=deep(MAX_EVENT_DEPTH - 1))]).rows) == 1


def test_a_body_nested_beyond_what_json_is_read_to_is_a_body_error():
    too_deep = b"[" * 1100 + b"]" * 1100
    with pytest.raises(BodyError, match="not valid JSON"):
        parse_body(too_deep)
    with pytest.raises(BodyError, match="line 2"):
        parse_body(json.dumps(event()).encode() + b"\n" + too_deep, "application/x-ndjson")
    assert BodyError("x").status_code == 400 and isinstance(BodyError("x"), RecsysError)


def test_ip_addresses_and_user_agents_are_not_kept_at_any_depth():
    sent = event(ip="203.0.113.7", userAgent="Mozilla/5.0", ua="curl", shop_note="keep",
                 context={"ip_address": "203.0.113.7", "userAgent": "Mozilla/5.0",
                          "device": {"type": "mobile", "user_agent": "x", "model": "keep"},
                          "page": {"url": "https://shop.example/p1", "remote_addr": "1.2.3.4"}},
                 properties={"product_id": "p1", "ipAddress": "1.2.3.4",
                             "meta": {"X-Forwarded-For": "1.2.3.4", "hops": [
                                 {"Forwarded": "for=1.2.3.4", "n": 1}]}})
    (row,) = validate_events([sent]).rows
    assert orjson.loads(row["extra"]) == {
        "shop_note": "keep", "context": {"device": {"model": "keep"}},
        "properties": {"meta": {"hops": [{"n": 1}]}}}
    refused = validate_events([{**sent, "event_type": "teleport"}]).rejected[0]
    assert "203.0.113.7" not in orjson.dumps(refused.raw).decode()
    assert "Mozilla" not in orjson.dumps(refused.raw).decode()
    assert refused.raw["shop_note"] == "keep" and refused.raw["context"]["device"] == {
        "type": "mobile", "model": "keep"}


def keys_within(value) -> list:
    """Every mapping key in `value`, at any depth."""
    found, pending = [], [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            found.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


SIGNED = UserBinding("require", BearerKeys(["signing-key"], what="signing keys"))
ANONYMOUS = UserBinding("anonymous", BearerKeys(["signing-key"], what="signing keys"))
JSON_LEAVES = (st.none() | st.booleans() | st.floats() | st.text(max_size=20)
               | st.integers(min_value=-10**30, max_value=10**30))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                           max_leaves=15)
FIELDS = st.sampled_from(["event_id", "user_id", "session_id", "event_type", "timestamp",
                          "context", "properties", "user_signature", "anonymous_id", "ip",
                          "userAgent", "extra_field"])


@st.composite
def bodies(draw) -> bytes:
    """A request body: an event with any field replaced by any JSON value (NaN, Infinity,
    numbers beyond 64 bits, duplicate keys written out), wrapped in nesting up to past what
    JSON is read to, several in an array or NDJSON, or any bytes (invalid UTF-8 too)."""
    kind = draw(st.sampled_from(["event", "array", "ndjson", "bytes", "deep", "value"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "value":
        return json.dumps(draw(JSON_VALUES)).encode()

    def one() -> bytes:
        body = event(event_id=f"e{draw(st.integers(0, 9))}", session_id=None)
        for name in draw(st.lists(FIELDS, max_size=3)):
            body[name] = draw(JSON_VALUES)
        text = json.dumps(body, allow_nan=True)  # NaN / Infinity as Python writes them
        if draw(st.booleans()):  # a duplicate key after the first
            text = text[:-1] + f', "event_type": {json.dumps(draw(JSON_VALUES))}}}'
        return text.encode()

    if kind == "deep":
        depth = draw(st.integers(1, 1100))
        return (b'{"event_id":"d","user_id":"u","event_type":"view","timestamp":%d,'
                b'"properties":{"product_id":"p"},"x":' % T + b"[" * depth + b"]" * depth
                + b"}")
    if kind == "event":
        return one()
    events = [one() for _ in range(draw(st.integers(0, 4)))]
    return b"[" + b",".join(events) + b"]" if kind == "array" else b"\n".join(events)


@settings(max_examples=300, derandomize=True, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(body=bodies(), binding=st.sampled_from([NO_BINDING, SIGNED, ANONYMOUS]),
       content_type=st.sampled_from(["application/json", "application/x-ndjson"]))
@example(body=json.dumps(event(user_signature="v1.².x")).encode(), binding=SIGNED,
         content_type="application/json")
@example(body=json.dumps([event(), event(event_id="e2", x=deep(300))]).encode(),
         binding=NO_BINDING, content_type="application/json")
def test_any_body_is_read_or_refused_and_every_event_is_accounted_for(body, binding,
                                                                      content_type):
    try:
        events = parse_body(body, content_type)
    except RecsysError:  # the body as a whole: 400
        return
    checked = validate_events(events, TimeBounds(received_ms=T + 1000), binding)
    assert len(checked.rows) + len(checked.rejected) == len(events)
    assert sorted([r.index for r in checked.rejected]) == [r.index for r in checked.rejected]
    for row in checked.rows:
        assert not any(map(is_personal_key, keys_within(orjson.loads(row["extra"] or "{}"))))
        orjson.dumps(row)  # what the bus carries
    for refused in checked.rejected:
        assert refused.errors and all(e["field"] for e in refused.errors)
        orjson.dumps({"reason": refused.reason, "raw": refused.raw})  # the dead letter
