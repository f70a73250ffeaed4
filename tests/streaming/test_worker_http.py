"""A stream worker run as a process of its own answers /health (alive while its bus reads
keep coming) and /metrics (its own figures and lag, metrics token only), over a real Redis;
and the CLI serves them with --metrics-port."""
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from recsys.core.online.bearer_keys import BearerKeys
from recsys.streaming.metrics import StreamSources
from recsys.streaming.redis_bus import RedisStreamBus
from recsys.streaming.worker_http import create_worker_app
from recsys.tools.local_services import free_port, wait_for_http
from tests.streaming.test_metrics import SCRAPE, scrape
from tests.streaming.test_processor import drain, event, processor  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def worker_client(processor, stale_seconds=120.0) -> TestClient:  # noqa: F811
    reader = processor.reader
    sources = StreamSources(None, reader.bus, (reader.group,), processor.stats,
                            dead_letters=False)
    app = create_worker_app("processor", reader, sources, BearerKeys(["prometheus-token"]),
                            stale_seconds)
    return TestClient(app)


def test_processor_metrics_count_its_batches_freshness_and_lag(processor):  # noqa: F811
    client = worker_client(processor)
    now = int(time.time() * 1000)
    processor.bus.publish([event(n, f"u{n % 3}", "view", now - 2_000) for n in range(12)])
    before = scrape(client)
    assert before[("recsys_stream_lag", (("group", "session-features"),))] == 12
    assert ("recsys_stream_dead_letters", ()) not in before  # the collector's figure
    assert drain(processor) == 12

    after = scrape(client)
    assert after[("recsys_processor_events_total", (("outcome", "applied"),))] == 12
    assert after[("recsys_processor_users_pushed_total", ())] == 3
    assert after[("recsys_processor_batch_seconds_count", ())] == processor.stats.batches == 1
    assert after[("recsys_processor_batch_seconds_sum", ())] == pytest.approx(
        processor.stats.seconds)
    assert 2.0 <= after[("recsys_processor_freshness_seconds", ())] < 30.0
    assert after[("recsys_stream_lag", (("group", "session-features"),))] == 0
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_health_fails_when_the_worker_stops_reading(processor):  # noqa: F811
    client = worker_client(processor, stale_seconds=5.0)
    processor.poll()
    alive = client.get("/health")
    assert alive.status_code == 200 and alive.json()["alive"] is True
    processor.reader.last_read -= 6.0  # as if the loop hung in a write for 6 s
    stuck = client.get("/health")
    assert stuck.status_code == 503
    assert stuck.json()["seconds_since_last_read"] >= 6.0


def test_the_sink_command_serves_health_and_metrics(tmp_path):
    port = free_port()
    stream = f"test:{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "RECSYS_STATE_DIR": str(tmp_path / "state"), "RECSYS_NO_PROGRESS": "1",
           "RECSYS_EVENT_STREAM": stream,
           "RECSYS_METRICS_TOKEN": "prometheus-token", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "recsys.cli.main", "stream", "sink", "--consumer", "sink-0",
               "--metrics-port", str(port)]
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        assert wait_for_http(f"http://127.0.0.1:{port}/health", 60, worker), \
            worker.stderr.read() if worker.poll() is not None else "no answer"
        assert httpx.get(f"http://127.0.0.1:{port}/health").json()["group"] == "lake-sink"
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 401
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", headers=SCRAPE).text
        assert "recsys_sink_flush_seconds_count 0.0" in body
        assert 'recsys_stream_lag{group="lake-sink"} 0.0' in body
    finally:
        worker.kill()
        worker.wait()
        RedisStreamBus(stream=stream).reset()
