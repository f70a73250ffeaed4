"""The serving process (`python -m recsys.serving.server`, MLServer) caps each request head
on its REST and metrics ports, and its metrics port needs the metrics token. A real server
with no model: what is tested happens before any route."""
import json
import os
import subprocess
import sys

import pytest
import requests

from recsys.tools.local_services import wait_for_http
from tests.conftest import free_port
from tests.http_probes import endless_header, trickled_header

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MAX_HEAD = 16_384
READ = 256 * 1024  # the most one read of the server's event loop takes


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serving-heads")
    repo = tmp / "models"
    repo.mkdir()
    ports = {"http_port": free_port(), "grpc_port": free_port(), "metrics_port": free_port()}
    (repo / "settings.json").write_text(json.dumps({"parallel_workers": 0, **ports}))
    env = {**os.environ, "RECSYS_STATE_DIR": str(tmp / "state"),
           "RECSYS_HTTP_MAX_HEADER_BYTES": str(MAX_HEAD),
           "RECSYS_HTTP_HEADER_TIMEOUT_SECONDS": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "recsys.serving.server", "start", str(repo)],
                            env=env, stdout=open(tmp / "server.log", "w"),
                            stderr=subprocess.STDOUT)
    try:
        if not wait_for_http(f"http://127.0.0.1:{ports['http_port']}/v2/health/live", 120,
                             proc):
            pytest.fail("mlserver not ready:\n" + (tmp / "server.log").read_text()[-3000:])
        secrets = tmp / "state" / "secrets"
        yield {**ports, "metrics_token": (secrets / "metrics_token").read_text().strip(),
               "service_token": (secrets / "serving_token").read_text().strip()}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("port", ["http_port", "metrics_port"])
def test_an_endless_header_is_refused_after_the_cap_and_the_server_still_answers(server,
                                                                                 port):
    refused = endless_header(server[port], "/v2/health/live")
    assert refused is not None, "the server read 4 MiB of one header without refusing it"
    assert refused.sent <= MAX_HEAD + 2 * READ
    assert refused.answer.startswith(b"HTTP/1.1 431 ") or refused.answer == b""
    live = requests.get(f"http://127.0.0.1:{server['http_port']}/v2/health/live", timeout=10)
    assert live.status_code == 200


def test_a_head_trickled_byte_by_byte_is_cut_off_at_the_header_timeout(server):
    refused = trickled_header(server["http_port"], "/v2/health/live", pause_seconds=0.5,
                              give_up_after=20)
    assert refused is not None, "the server still waited for the head after 20 slow bytes"
    assert refused.answer.startswith(b"HTTP/1.1 408 ")


def test_mlservers_metrics_port_needs_the_metrics_token(server):
    url = f"http://127.0.0.1:{server['metrics_port']}/metrics"
    anonymous = requests.get(url, timeout=10)
    assert anonymous.status_code == 401
    assert "# TYPE" not in anonymous.text and "rest_server" not in anonymous.text
    wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401
    scraped = requests.get(url, headers={"Authorization": f"Bearer {server['metrics_token']}"},
                           timeout=10)
    assert scraped.status_code == 200 and "# TYPE" in scraped.text
