"""The collector process (`recsys stream collector`) and a stream worker's HTTP server cap
each request head in size and time (`recsys.core.online.http_limits`), before any key is checked."""
import subprocess
import sys
import uuid

import httpx
import pytest

from recsys.benchmarks.stream_load import worker_env
from recsys.core.online.bearer_keys import BearerKeys
from recsys.core.settings import Settings
from recsys.streaming.worker_http import create_worker_app, serve_in_background
from recsys.tools.local_services import wait_for_http
from tests.conftest import REPO, free_port
from tests.http_probes import endless_header, trickled_header

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MAX_HEAD = 16_384
READ = 256 * 1024  # the most one read of the server's event loop takes


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    settings = Settings(state_dir=tmp_path_factory.mktemp("collector-heads") / "state",
                        event_stream=f"test:{uuid.uuid4().hex[:8]}")
    port = free_port()
    env = {**worker_env(settings), "RECSYS_HTTP_MAX_HEADER_BYTES": str(MAX_HEAD),
           "RECSYS_HTTP_HEADER_TIMEOUT_SECONDS": "2"}
    process = subprocess.Popen([sys.executable, "-m", "recsys.cli.main", "stream", "collector",
                                "--port", str(port), "--allow-volatile-bus"], env=env,
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        if not wait_for_http(f"http://127.0.0.1:{port}/health", 120, process):
            pytest.fail(process.stderr.read().decode()[-2000:])
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_collector_refuses_an_endless_header_after_the_cap_and_still_answers(collector):
    refused = endless_header(collector, "/events")
    assert refused is not None, "the collector read 4 MiB of one header without refusing it"
    assert refused.sent <= MAX_HEAD + 2 * READ
    assert refused.answer.startswith(b"HTTP/1.1 431 ") or refused.answer == b""
    assert httpx.get(f"http://127.0.0.1:{collector}/health").status_code == 200


def test_the_collector_cuts_off_a_head_trickled_byte_by_byte(collector):
    refused = trickled_header(collector, "/events", pause_seconds=0.5, give_up_after=20)
    assert refused is not None, "the collector still waited for the head after 20 slow bytes"
    assert refused.answer.startswith(b"HTTP/1.1 408 ")


def test_a_normal_head_with_a_body_larger_than_the_cap_is_not_taken_for_a_flood(collector):
    # the body is not head: only the request line and headers count
    body = b"[" + b",".join([b'{"a": "' + b"x" * 100 + b'"}'] * 600) + b"]"
    answer = httpx.post(f"http://127.0.0.1:{collector}/events", content=body,
                        headers={"Content-Type": "application/json"})
    assert len(body) > 4 * MAX_HEAD and answer.status_code == 401  # reached the key check


def test_a_stream_workers_http_refuses_an_endless_header():
    class Reader:
        group, consumer, last_read = "g", "c", 0.0

    port = free_port()
    app = create_worker_app("sink", Reader(), None, BearerKeys(["token"]))
    server = serve_in_background(app, "127.0.0.1", port,
                                 Settings(http_max_header_bytes=MAX_HEAD))
    try:
        refused = endless_header(port, "/health")
        assert refused is not None and refused.sent <= MAX_HEAD + 2 * READ
        assert refused.answer.startswith(b"HTTP/1.1 431 ") or refused.answer == b""
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code in (200, 503)
    finally:
        server.should_exit = True


def test_many_requests_on_one_connection_are_not_summed_into_one_head():
    class Reader:
        group, consumer, last_read = "g", "c", 0.0

    port = free_port()
    app = create_worker_app("sink", Reader(), None, BearerKeys(["token"]))
    server = serve_in_background(app, "127.0.0.1", port,
                                 Settings(http_max_header_bytes=MAX_HEAD))
    try:
        with httpx.Client(headers={"X-Padding": "p" * 4_000}) as client:  # one connection
            answers = [client.get(f"http://127.0.0.1:{port}/health") for _ in range(20)]
        assert 20 * 4_000 > MAX_HEAD
        assert {a.status_code for a in answers} <= {200, 503} and len(answers) == 20
    finally:
        server.should_exit = True
