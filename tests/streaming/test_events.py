"""Rich-format events: body forms, per-event validation naming the field."""
import json

import pytest

from recsys.streaming.events import BodyError, TimeBounds, parse_body, validate_events

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
