"""Serving's OpenAPI document (`serving/openapi.py`): served behind the service token, and
the running server fuzzed against it with schemathesis - no 5xx, every answer documented
and of the documented shape; without the token every request is 401 and answers nothing
(no request is counted)."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from recsys.serving.openapi import DOCUMENTED, serving_document
from recsys.tools.local_services import wait_for_http
from tests.conftest import REPO, free_port
from tests.factories import served_champion

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
FUZZ = settings(max_examples=25, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
SCHEMA = schemathesis.openapi.from_dict(serving_document())
OPERATIONS = {path: SCHEMA[path]["GET"] for path in DOCUMENTED}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serving-openapi")
    state = tmp / "state"
    processed, version = served_champion(state, events=3_000, seed=5)
    repo = tmp / "models"
    shutil.copytree(REPO / "serving" / "model_repository", repo)
    ports = {"http_port": free_port(), "grpc_port": free_port(), "metrics_port": free_port()}
    (repo / "settings.json").write_text(json.dumps({"parallel_workers": 0, **ports}))
    env = {**os.environ, "RECSYS_STATE_DIR": str(state),
           "RECSYS_REDIS_URL": "redis://127.0.0.1:6379/11"}
    proc = subprocess.Popen([sys.executable, "-m", "recsys.serving.server", "start", str(repo)],
                            env=env, stdout=open(tmp / "server.log", "w"),
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{ports['http_port']}"
    try:
        if not wait_for_http(f"{url}/v2/models/recsys/ready", 120, proc):
            pytest.fail("mlserver not ready:\n" + (tmp / "server.log").read_text()[-3000:])
        token = (state / "secrets" / "serving_token").read_text().strip()
        yield {"url": url, "auth": {"Authorization": f"Bearer {token}"}, "log": tmp / "server.log"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def requests_counted(server) -> float:
    """Sum of `recsys_requests_total` (every REST and V2 request the runtime handled)."""
    text = requests.get(f"{server['url']}/recsys/metrics", headers=server["auth"],
                        timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("recsys_requests_total{"))


def test_the_committed_document_is_what_serving_serves(server):
    url = f"{server['url']}/recsys/openapi.json"
    assert requests.get(url, timeout=10).status_code == 401
    served = requests.get(url, headers=server["auth"], timeout=10)
    assert served.status_code == 200
    committed = json.loads((REPO / "docs" / "openapi" / "serving.json").read_text())
    assert served.json() == committed == serving_document()


def strategy(mode: GenerationMode):
    operations = [operation.as_strategy(mode) for operation in OPERATIONS.values()]
    cases = operations[0]
    for more in operations[1:]:
        cases = cases | more
    return cases


def test_without_the_token_every_fuzzed_request_is_401_and_nothing_is_answered(server):
    before = requests_counted(server)

    @FUZZ
    @given(case=strategy(GenerationMode.POSITIVE) | strategy(GenerationMode.NEGATIVE))
    def anonymous(case):
        case.headers = {k: v for k, v in (case.headers or {}).items()
                        if k.lower() != "authorization"}
        response = case.call(base_url=server["url"], timeout=10)
        assert response.status_code == 401, response.text
        case.validate_response(response, checks=CHECKS)

    anonymous()
    assert requests_counted(server) == before
    requests.get(f"{server['url']}/recommend/someone", headers=server["auth"], timeout=10)
    assert requests_counted(server) == before + 1  # the count sees an answered request


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_with_the_token_every_fuzzed_request_gets_a_documented_answer(server, mode):
    @FUZZ
    @given(case=strategy(mode))
    def authorized(case):
        response = case.call_and_validate(base_url=server["url"], headers=server["auth"],
                                          checks=CHECKS, timeout=10)
        # negative cases may break the Authorization header itself: 401 is their answer
        assert response.status_code != 401 or mode == GenerationMode.NEGATIVE

    authorized()
