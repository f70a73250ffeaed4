"""An S3 endpoint that stops answering (a moto server of the test's own, SIGSTOPped): an
extract fails naming the endpoint instead of waiting for botocore's defaults, leaves no
partial object, and a re-run once the endpoint answers again lands every event once."""
import json
import os
import signal
import subprocess
import sys
import threading
import uuid

import pytest

from recsys.components.extract.extract import ExtractConfig, extract
from recsys.core.data import lake as lake_module
from recsys.core.data.event_store import RAW_ZONE
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from recsys.core.errors import LakeError
from recsys.tools.local_services import freeze_process, wait_for_http
from tests.conftest import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
START_MS = 1_790_000_000_000


@pytest.fixture
def frozen_s3(monkeypatch):
    """(endpoint URL, the moto server process) on a free port, stopped afterwards."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    port = free_port()
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1",
         "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for_http(f"{url}/moto-api/", 60, server), "moto server did not start"
        yield url, server
    finally:
        server.send_signal(signal.SIGCONT)
        server.terminate()
        server.wait(timeout=30)


def test_an_s3_endpoint_that_stops_answering_fails_the_extract_naming_it(
        frozen_s3, tmp_path, monkeypatch):
    import boto3

    url, server = frozen_s3
    # the shipped bounds, smaller so the test is quick: what is tested is that they apply
    monkeypatch.setattr(lake_module, "S3_CLIENT_BOUNDS", {
        "connect_timeout": 1, "read_timeout": 1, "retries": {"mode": "standard",
                                                             "max_attempts": 1}})
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=url).create_bucket(Bucket=bucket)
    lake = Lake(f"s3://{bucket}/shop", s3_endpoint_url=url)
    source = tmp_path / "events.jsonl"
    source.write_text("".join(json.dumps({
        "event_id": f"e{n}", "user_id": f"u{n % 3}", "event_type": "view",
        "timestamp": START_MS + n * 1000, "properties": {"product_id": f"p{n}"}}) + "\n"
        for n in range(20)))

    freeze_process(server.pid)
    failures = []

    def run():
        try:
            extract(ExtractConfig(source=str(source)), lake)
        except Exception as error:  # noqa: BLE001 - what extract raised is the assertion
            failures.append(error)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=60)
    finished = not worker.is_alive()
    server.send_signal(signal.SIGCONT)
    assert finished, "the extract waited on a frozen S3 endpoint without bound"
    assert len(failures) == 1 and isinstance(failures[0], LakeError), repr(failures)
    assert url in str(failures[0])

    # nothing partial: whatever reached S3 reads whole; the re-run lands every event once
    landed = lake.list(RAW_ZONE)
    lake.read_tables(landed, schema=RAW_EVENT_SCHEMA)
    report, _ = extract(ExtractConfig(source=str(source)), lake)
    ids = lake.read_tables(lake.list(RAW_ZONE), columns=["event_id"],
                           schema=RAW_EVENT_SCHEMA).column("event_id").to_pylist()
    assert sorted(ids) == sorted(f"e{n}" for n in range(20))
