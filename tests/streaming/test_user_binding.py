"""User binding: the shop's backend signs user ids; a forged, expired or missing signature
is refused (or kept anonymously), over a real Redis bus."""
import time

import orjson
import pytest

from recsys.core.bearer_keys import BearerKeys
from recsys.core.errors import ConfigError
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
