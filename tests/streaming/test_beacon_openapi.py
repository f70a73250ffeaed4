"""The beacon path against its OpenAPI document (`streaming/openapi.py`): the collector's
HTTP server fuzzed with schemathesis on `POST /events/beacon`, every answer documented and
of the documented shape; without the write key in the URL every request is 401 and stores
nothing."""
import threading
import time
import uuid

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from recsys.streaming.collector import BEACON_PATH, create_app
from recsys.streaming.openapi import collector_document
from recsys.streaming.redis_bus import RedisStreamBus
from tests.conftest import free_port
from tests.streaming.conftest import WRITE_KEY, keyed_access

pytestmark = pytest.mark.integration
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
FUZZ = settings(max_examples=40, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
SEND_BEACON = schemathesis.openapi.from_dict(collector_document())[BEACON_PATH]["POST"]
SHOP = "https://shop.example"


@pytest.fixture(scope="module")
def collector():
    bus = RedisStreamBus(stream=f"test:beacon-openapi:{uuid.uuid4().hex[:8]}")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        create_app(bus, keyed_access(allowed_origins=(SHOP,))), host="127.0.0.1", port=port,
        log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the collector did not start"
        time.sleep(0.05)
    try:
        yield {"url": f"http://127.0.0.1:{port}", "bus": bus}
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        bus.dead_letter_bus().reset()
        bus.reset()


def stored(bus) -> int:
    return bus.client.xlen(bus.stream) + bus.dead_letter_bus().client.xlen(
        bus.dead_letter_bus().stream)


def test_without_the_key_every_fuzzed_beacon_is_401_and_nothing_is_stored(collector):
    @FUZZ
    @given(case=SEND_BEACON.as_strategy(GenerationMode.POSITIVE)
           | SEND_BEACON.as_strategy(GenerationMode.NEGATIVE))
    def anonymous(case):
        if isinstance(case.query, dict) and case.query.get("key") == WRITE_KEY:
            case.query = {**case.query, "key": "not-the-key"}
        response = case.call(base_url=collector["url"])
        assert response.status_code == 401, response.text
        case.validate_response(response, checks=CHECKS)

    anonymous()
    assert stored(collector["bus"]) == 0


@pytest.mark.parametrize("origin", [None, SHOP, "https://other.example"])
def test_with_the_key_every_fuzzed_beacon_gets_a_documented_answer(collector, origin):
    @FUZZ
    @given(case=SEND_BEACON.as_strategy(GenerationMode.POSITIVE))
    def keyed(case):
        case.query = {"key": WRITE_KEY}
        headers = {"Origin": origin} if origin else {}
        response = case.call_and_validate(base_url=collector["url"], headers=headers,
                                          checks=CHECKS)
        if origin == "https://other.example":
            assert response.status_code == 403
        else:
            assert response.status_code in (202, 400, 413, 415, 422), response.text

    keyed()
