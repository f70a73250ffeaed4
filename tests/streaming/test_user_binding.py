"""User binding: the shop's backend signs user ids; a forged, expired or missing signature
is refused (or kept anonymously), over a real Redis bus."""
import time

import orjson
import pytest

from recsys.core.data.visitors import anonymous_user_id
from recsys.core.errors import ConfigError
from recsys.core.online.bearer_keys import BearerKeys
from recsys.core.settings import Settings
from recsys.streaming.runtime import collector_access
from recsys.streaming.user_binding import UserBinding, sign_user
from tests.streaming.conftest import collector_client, keyed_access

KEY, OLD_KEY = "shop-backend-signing-key", "last-months-key"
NOW = int(time.time())


def event(n, user="u1", signature=None):
    body = {"event_id": f"e{n}", "user_id": user, "session_id": "s-42", "event_type": "view",
            "timestamp": NOW * 1000 - 1000, "properties": {"product_id": "p1"}}
    if signature is not None:
        body["user_signature"] = signature
    return body


def stored_users(bus) -> list[str]:
    """The user ids of the events on the bus, in order (each entry holds the row as JSON)."""
    return [orjson.loads(value)["user_id"] for _, fields in bus.client.xrange(bus.stream)
            for value in fields.values()]


def binding(mode):
    return UserBinding(mode, BearerKeys([KEY, OLD_KEY], what="signing keys"))


@pytest.mark.integration
def test_require_refuses_forged_expired_and_missing_signatures(bus):
    client = collector_client(bus, access=keyed_access(binding=binding("require")))
    good = sign_user(KEY, "u1", NOW + 3600)
    assert client.post("/events", json=event(1, signature=good)).status_code == 202
    rotated = sign_user(OLD_KEY, "u1", NOW + 3600)  # both keys during a rotation
    assert client.post("/events", json=event(2, signature=rotated)).status_code == 202
    cases = {
        "does not match user_id": event(3, user="victim", signature=good),  # u1's token
        "has expired": event(4, signature=sign_user(KEY, "u1", NOW - 10)),
        "no user_signature": event(5),
        "is not v1.<expires>.<hex digest>": event(6, signature="v1.soon.abc"),
        "does not match": event(7, signature=sign_user("guessed-key", "u1", NOW + 3600)),
    }
    for message, body in cases.items():
        answer = client.post("/events", json=body)
        assert answer.status_code == 422, message
        error = answer.json()["errors"][0]["errors"][0]
        assert error["field"] == "user_signature" and message in error["message"]
    assert stored_users(bus) == ["u1", "u1"]
    assert len(bus.dead_letters()) == len(cases)  # every refused event accounted for


@pytest.mark.integration
def test_anonymous_mode_keeps_unsigned_events_under_an_id_that_is_not_the_user(bus):
    client = collector_client(bus, access=keyed_access(binding=binding("anonymous")))
    good = sign_user(KEY, "u1", NOW + 3600)
    assert client.post("/events", json=event(1, signature=good)).json()["accepted"] == 1
    forged = client.post("/events", json=[event(2, user="victim", signature=good), event(3)])
    assert forged.status_code == 202 and forged.json()["anonymized"] == 2
    users = stored_users(bus)
    assert users[0] == "u1" and users[1] == users[2] == UserBinding.anonymous_id("s-42")
    assert "victim" not in users and users[1].startswith("anonymous:")


def test_binding_is_configured_or_refused(tmp_path):
    keys = tmp_path / "signing"
    keys.write_text(KEY + "\n")
    settings = Settings(state_dir=tmp_path, collector_write_keys="w",
                        collector_user_binding="require",
                        collector_user_signing_keys_file=keys)
    access = collector_access(settings)
    assert access.binding.mode == "require"
    assert access.binding.problem("u1", sign_user(KEY, "u1", int(time.time()) + 3600)) is None
    with pytest.raises(ConfigError, match="needs signing keys"):
        collector_access(Settings(state_dir=tmp_path, collector_write_keys="w",
                                  collector_user_binding="anonymous"))
    with pytest.raises(ValueError):
        Settings(collector_user_binding="sometimes")
    assert collector_access(Settings(state_dir=tmp_path, collector_write_keys="w")) \
        .binding.active is False


@pytest.mark.integration
def test_a_malformed_signature_refuses_that_event_only(bus):
    client = collector_client(bus, access=keyed_access(binding=binding("require")))
    good = sign_user(KEY, "u1", NOW + 3600)
    later = NOW + 3600
    malformed = ["v1.².x", f"v1.{later}.é", "v1.٣٣٣٣٣٣٣٣٣٣." + "a" * 64,  # non-ASCII digits
                 f"v1.{later}.{'A' * 64}", f"v1.{later}.{good[-63:]}", "v1..", "v1",
                 f"v2.{later}.{good[-64:]}", f"v1.{later}.{good[-64:]}.x", " " + good]
    answer = client.post("/events", json=[event(0, signature=good)] + [
        event(n, signature=s) for n, s in enumerate(malformed, start=1)])
    assert answer.status_code == 422
    body = answer.json()
    assert body["accepted"] == 1 and body["rejected"] == len(malformed)
    assert [e["index"] for e in body["errors"]] == list(range(1, len(malformed) + 1))
    assert {e["errors"][0]["field"] for e in body["errors"]} == {"user_signature"}
    assert stored_users(bus) == ["u1"]
    assert len(bus.dead_letters()) == len(malformed)


@pytest.mark.integration
def test_anonymous_visitors_without_a_session_do_not_share_one_id(bus):
    client = collector_client(bus, access=keyed_access(binding=binding("anonymous")))

    def unsigned(n, **fields):
        body = event(n)
        del body["session_id"]
        return {**body, **fields}

    client.post("/events", json=[unsigned(1), unsigned(2)])  # one page's batch
    client.post("/events", json=[unsigned(3)])  # another visitor, or a later page
    client.post("/events", json=[unsigned(4, anonymous_id="device-7"),
                                 unsigned(5, context={"device": {"id": "phone-9"}})])
    client.post("/events", json=[unsigned(6, anonymous_id="device-7"),
                                 unsigned(7, session_id="", device_id="device-8")])
    users = stored_users(bus)
    assert users[0] == users[1] and users[2] != users[0]  # per request, never shared
    assert users[3] == users[5] == anonymous_user_id(None, "device-7")  # what the client keeps
    assert users[4] == anonymous_user_id(None, "phone-9")
    assert users[6] == anonymous_user_id(None, "device-8")
    assert len(set(users)) == 5 and all(u.startswith("anonymous:") for u in users)
    assert "u1" not in users


def test_anonymous_ids_are_per_session_then_per_visitor_then_random():
    assert anonymous_user_id("s-1") == anonymous_user_id("s-1", "device-7")
    assert anonymous_user_id(None, "s-1") != anonymous_user_id("s-1")  # not a session's id
    assert anonymous_user_id(None, "d") == anonymous_user_id("", "d")
    fresh = {anonymous_user_id(None) for _ in range(100)}
    assert len(fresh) == 100 and all(len(u) == len("anonymous:") + 16 for u in fresh)
