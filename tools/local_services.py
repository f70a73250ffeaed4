"""Helpers for tests and benchmarks that use the machine's real services on loopback."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUS_CONFIG = Path(__file__).resolve().parents[1] / "infra" / "redis" / "bus.conf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def freeze_process(pid: int, timeout_seconds: float = 5.0) -> None:
    """SIGSTOP `pid` and return once every one of its threads is stopped: the signal is
    delivered asynchronously, so a thread running on another core can still answer a request
    sent right after `kill()` returns, and a test asserting "a frozen server answers nothing"
    would then see an answer."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout_seconds
    while not _all_threads_stopped(pid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"process {pid} did not stop within {timeout_seconds} s")
        time.sleep(0.005)


def _all_threads_stopped(pid: int) -> bool:
    """Whether every thread of `pid` is in state T (stopped) according to /proc."""
    states = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:  # the state is the field after the parenthesised command name
            states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
    return bool(states) and all(state in ("T", "t") for state in states)


class RedisServer:
    """A redis-server of its own on a free port and data folder: from the shipped durable
    configuration (infra/redis/bus.conf: AOF, appendfsync always, noeviction), or volatile
    (nothing on disk). `maxmemory` (bytes) makes a runaway growth fail writes (noeviction)
    instead of going unnoticed."""

    def __init__(self, folder: Path, durable: bool = True, maxmemory: int | None = None):
        self.folder, self.port = Path(folder), free_port()
        self.durable, self.maxmemory = durable, maxmemory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        import redis

        self.folder.mkdir(parents=True, exist_ok=True)
        command = ["redis-server", str(BUS_CONFIG), "--port", str(self.port),
                   "--dir", str(self.folder)]
        if not self.durable:
            command += ["--appendonly", "no"]
        if self.maxmemory:
            command += ["--maxmemory", str(self.maxmemory)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server ({' '.join(command)}) did not start")

    def crash(self) -> None:
        """SIGKILL: no shutdown, no final save."""
        self.process.kill()
        self.process.wait()


@contextmanager
def redis_server(folder: Path, durable: bool = True,
                 maxmemory: int | None = None) -> Iterator[RedisServer]:
    server = RedisServer(folder, durable, maxmemory)
    server.start()
    try:
        yield server
    finally:
        server.crash()


@contextmanager
def temporary_postgres_database(prefix: str) -> Iterator[str]:
    """Create a fresh database on the local PostgreSQL (trust auth) and drop it afterwards;
    yields its SQLAlchemy URL."""
    import psycopg2

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def wait_for_http(url: str, timeout_seconds: float = 120.0, process=None) -> bool:
    """Poll `url` until it answers 2xx; False on timeout or when `process` exits first."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        if _answers(url):
            return True
        time.sleep(0.5)
    return False


def _answers(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:  # not listening yet
        return False


@contextmanager
def podman_api(socket_path: str) -> Iterator[str]:
    """podman's Docker-compatible API on a unix socket, for docker-py (kfp.local's
    DockerRunner); yields the DOCKER_HOST value and stops the service afterwards."""
    import os
    import subprocess

    url = f"unix://{socket_path}"
    service = subprocess.Popen(["podman", "system", "service", "--time=0", url],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(socket_path):
                break
            time.sleep(0.1)
        yield url
    finally:
        service.terminate()
        service.wait(timeout=30)


def start_mlflow_server(database_url: str, artifacts: str, port: int, *extra_args: str,
                        env: dict | None = None, log=None):
    """Start `mlflow server` on `database_url` (its own process group). MLflow's job runner
    (seven huey consumers for its GenAI jobs, which the project never submits) is off: it
    tripled the start on two cores and held the stop for ~25 s."""
    import os
    import subprocess
    import sys

    return subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "mlflow"), "server",
         "--backend-store-uri", database_url, "--artifacts-destination", artifacts,
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1", *extra_args],
        env={**(env or os.environ), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=log or subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)


def stop_process_group(process, timeout_seconds: float = 10.0) -> None:
    """SIGTERM to the process and its children, SIGKILL to what is left after the timeout."""
    import os
    import signal
    import subprocess

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout_seconds)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def mlflow_server(database_url: str, artifacts: str, port: int) -> Iterator[str]:
    """A real `mlflow server` on `database_url`, serving its artifacts; yields its URL."""
    server = start_mlflow_server(database_url, artifacts, port)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_for_http(f"{url}/health", 120, server):
            raise RuntimeError("mlflow server did not start")
        yield url
    finally:
        stop_process_group(server)


@contextmanager
def s3_endpoint(port: int) -> Iterator[str]:
    """A real S3-speaking endpoint (moto's server mode) on loopback; yields its URL (set
    AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY for the clients)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
