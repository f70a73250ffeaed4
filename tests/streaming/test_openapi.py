"""The collector's OpenAPI document (`streaming/openapi.py`): served behind a key, and the
running collector fuzzed against it with schemathesis - no 5xx, every answer documented
and of the documented shape; without the key every request is 401 and stores nothing."""
import json
import subprocess
import sys
import time
import uuid

import httpx
import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from recsys.benchmarks.stream_load import LOAD_WRITE_KEY, worker_env
from recsys.core.settings import Settings
from recsys.streaming.openapi import collector_document
from recsys.tools.local_services import wait_for_http
from tests.conftest import REPO, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
METRICS_TOKEN = "prometheus-token-for-tests"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
FUZZ = settings(max_examples=40, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
SCHEMA = schemathesis.openapi.from_dict(collector_document())
SEND_EVENTS = SCHEMA["/events"]["POST"]


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    stream = f"test:{uuid.uuid4().hex[:8]}"
    config = Settings(state_dir=tmp_path_factory.mktemp("collector-openapi") / "state",
                      event_stream=stream)
    port = free_port()
    env = {**worker_env(config), "RECSYS_METRICS_TOKEN": METRICS_TOKEN}
    process = subprocess.Popen([sys.executable, "-m", "recsys.cli.main", "stream", "collector",
                                "--port", str(port), "--allow-volatile-bus"], env=env,
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not wait_for_http(f"http://127.0.0.1:{port}/health", 120, process):
            pytest.fail(process.stderr.read().decode()[-2000:])
        yield {"url": f"http://127.0.0.1:{port}", "stream": stream,
               "redis": redis.Redis.from_url(config.redis_url)}
    finally:
        process.terminate()
        process.wait(timeout=30)


def stored_entries(collector) -> int:
    """Entries in the test's streams on the bus (events and dead letters)."""
    client = collector["redis"]
    return sum(client.xlen(key) for key in client.scan_iter(f"{collector['stream']}*")
               if client.type(key) == b"stream")


def test_the_committed_document_is_what_the_collector_serves(collector):
    url = f"{collector['url']}/openapi.json"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    for key in (LOAD_WRITE_KEY, METRICS_TOKEN):
        served = httpx.get(url, headers={"Authorization": f"Bearer {key}"})
        assert served.status_code == 200
        committed = json.loads((REPO / "docs" / "openapi" / "collector.json").read_text())
        assert served.json() == committed == collector_document()


def test_without_a_key_every_fuzzed_request_is_401_and_nothing_is_stored(collector):
    @FUZZ
    @given(case=SEND_EVENTS.as_strategy(GenerationMode.POSITIVE)
           | SEND_EVENTS.as_strategy(GenerationMode.NEGATIVE))
    def anonymous(case):
        case.headers = {k: v for k, v in (case.headers or {}).items()
                        if k.lower() != "authorization"}
        response = case.call(base_url=collector["url"])
        assert response.status_code == 401, response.text
        case.validate_response(response, checks=CHECKS)

    anonymous()
    assert stored_entries(collector) == 0
    # the same check sees what a request with the key stores
    event = {"event_id": "seen-1", "user_id": "u1", "event_type": "view",
             "timestamp": int(time.time() * 1000), "properties": {"product_id": "p1"}}
    answer = httpx.post(f"{collector['url']}/events", json=event,
                        headers={"Authorization": f"Bearer {LOAD_WRITE_KEY}"})
    assert answer.status_code == 202 and stored_entries(collector) == 1


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_with_the_key_every_fuzzed_request_gets_a_documented_answer(collector, mode):
    key = {"Authorization": f"Bearer {LOAD_WRITE_KEY}"}

    @FUZZ
    @given(case=SEND_EVENTS.as_strategy(mode))
    def keyed(case):
        response = case.call_and_validate(base_url=collector["url"], headers=key,
                                          checks=CHECKS)
        # negative cases may break the Authorization header itself: 401 is their answer
        assert response.status_code != 401 or mode == GenerationMode.NEGATIVE

    keyed()
