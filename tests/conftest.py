"""Shared fixtures: the real sample data beside the repo, temp lakes, an S3 server, an MLflow
server on PostgreSQL."""
from __future__ import annotations

import configparser
import os
import socket
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from recsys.core.data.lake import Lake

REPO = Path(__file__).resolve().parents[1]


def shipped_folders() -> list[str]:
    """The folders the wheel installs as recsys.<folder>: setup.cfg's `[recsys]` list, the one
    place it is written."""
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    return config["recsys"]["shipped_folders"].split()
SHARED_DATA = Path(os.environ.get("RECSYS_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _quiet_progress(monkeypatch):
    monkeypatch.setenv("RECSYS_NO_PROGRESS", "1")


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.fail(f"shared sample data not found at {SHARED_DATA} (set RECSYS_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(str(tmp_path / "lake"))


@pytest.fixture
def now() -> pd.Timestamp:
    return pd.Timestamp("2026-11-01T00:00:00Z")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def s3_server(monkeypatch):
    """A real S3-speaking endpoint (moto in server mode) on loopback; yields its URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_lake(s3_server) -> Lake:
    """A lake on the S3 server in a bucket of its own: `s3://lake-<random>/shop` (moto's
    servers in one process share their buckets, so a fixed name would see other tests')."""
    import uuid

    import boto3

    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    return Lake(f"s3://{bucket}/shop", s3_endpoint_url=s3_server)


@pytest.fixture
def mlflow_server_on_postgres(tmp_path):
    """A real `mlflow server` on a fresh PostgreSQL database; yields (url, database url)."""
    from recsys.tools.local_services import (
        start_mlflow_server,
        stop_process_group,
        temporary_postgres_database,
        wait_for_http,
    )

    with temporary_postgres_database("mlflow_test") as database_url:
        port = free_port()
        server = start_mlflow_server(database_url, str(tmp_path / "artifacts"), port)
        url = f"http://127.0.0.1:{port}"
        try:
            assert wait_for_http(f"{url}/health", 90, server), "mlflow server not healthy"
            yield url, database_url
        finally:
            stop_process_group(server)


@pytest.fixture
def pushgateway(tmp_path):
    """Debian's Prometheus Pushgateway on a free port (Debian's default persists to /var/lib:
    kept in memory here); yields its URL."""
    from recsys.tools.local_services import wait_for_http

    port = free_port()
    process = subprocess.Popen(
        ["prometheus-pushgateway", f"--web.listen-address=127.0.0.1:{port}",
         "--persistence.file="],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "pg.log", "w"))
    url = f"http://127.0.0.1:{port}"
    assert wait_for_http(f"{url}/-/ready", 60, process), (tmp_path / "pg.log").read_text()
    yield url
    process.terminate()
    process.wait(timeout=30)
