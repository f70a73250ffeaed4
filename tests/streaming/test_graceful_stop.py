"""SIGTERM (a pod or unit stopping) ends `recsys stream up` and the standalone sink after
they have written their buffers: the events accepted before the signal are in the lake when
the process has exited, with exit code 0 - not only after a restart re-reads them."""
import signal
import subprocess
import sys
import time
import uuid

import httpx
import orjson
import pytest

from recsys.benchmarks.stream_load import HEADERS, worker_env
from recsys.core.data.event_store import RAW_ZONE, read_window
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from recsys.core.settings import Settings
from recsys.tools.local_services import wait_for_http
from tests.conftest import REPO, free_port

pytestmark = pytest.mark.integration


def events(n: int, prefix: str) -> bytes:
    now = int(time.time() * 1000)
    return b"\n".join(orjson.dumps({
        "event_id": f"{prefix}-{i}", "user_id": f"u{i % 7}", "session_id": f"s{i % 7}",
        "event_type": "view", "timestamp": now, "properties": {"product_id": f"p{i % 11}"}})
        for i in range(n))


def lake_ids(settings: Settings, prefix: str) -> set[str]:
    frame = read_window(Lake(settings.lake), RAW_ZONE, RAW_EVENT_SCHEMA)
    return {i for i in frame["event_id"] if i.startswith(prefix)}


@pytest.fixture
def settings(tmp_path):
    return Settings(state_dir=tmp_path / "state", event_stream=f"test:{uuid.uuid4().hex[:8]}")


def test_stream_up_writes_its_buffer_on_sigterm(settings):
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "recsys.cli.main", "stream", "up",
                                "--port", str(port), "--allow-volatile-bus"],
                               env=worker_env(settings), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert wait_for_http(f"http://127.0.0.1:{port}/health", 120, process), \
        process.stderr.read()[-2000:]
    answer = httpx.post(f"http://127.0.0.1:{port}/events", content=events(40, "up"),
                        headers=HEADERS)
    assert answer.status_code == 202 and answer.json()["accepted"] == 40
    time.sleep(2)  # read by the sink, far from its 30 s flush
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0, process.stderr.read()[-2000:]
    assert lake_ids(settings, "up-") == {f"up-{i}" for i in range(40)}


def test_a_standalone_sink_writes_its_buffer_on_sigterm(settings):
    from recsys.streaming.runtime import build_bus, build_sink

    sink_env = worker_env(settings)
    build_sink(settings)  # creates the group, so events published now are its to read
    bus = build_bus(settings)
    port = free_port()
    collector = subprocess.Popen([sys.executable, "-m", "recsys.cli.main", "stream",
                                  "collector", "--port", str(port), "--allow-volatile-bus"],
                                 env=sink_env, cwd=REPO, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
    sink = subprocess.Popen([sys.executable, "-m", "recsys.cli.main", "stream", "sink"],
                            env=sink_env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert wait_for_http(f"http://127.0.0.1:{port}/health", 120, collector)
        answer = httpx.post(f"http://127.0.0.1:{port}/events", content=events(25, "sink"),
                            headers=HEADERS)
        assert answer.status_code == 202
        deadline = time.monotonic() + 20
        while bus.pending("lake-sink") < 25 and time.monotonic() < deadline:
            time.sleep(0.2)
        # all read into the sink's buffer, none written yet (its flush is 30 s away)
        assert bus.pending("lake-sink") == 25 and bus.lag("lake-sink") == 25
        assert lake_ids(settings, "sink-") == set()
        sink.send_signal(signal.SIGTERM)
        assert sink.wait(timeout=60) == 0, sink.stderr.read()[-2000:]
        assert lake_ids(settings, "sink-") == {f"sink-{i}" for i in range(25)}
    finally:
        for process in (collector, sink):
            if process.poll() is None:
                process.kill()
