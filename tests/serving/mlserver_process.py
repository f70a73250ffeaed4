"""A real serving process (`python -m recsys.serving.server start`) on free loopback ports,
for tests that need their own server settings or environment."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from recsys.tools.local_services import wait_for_http
from tests.conftest import REPO, free_port


@dataclass
class RunningServer:
    url: str
    grpc: str
    token: str
    log: Path
    process: subprocess.Popen

    def session(self) -> requests.Session:
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {self.token}"
        return http

    def log_tail(self) -> str:
        return self.log.read_text()[-3000:]


@contextlib.contextmanager
def running_server(tmp: Path, state: Path, env: dict | None = None, extra: dict | None = None,
                   ready_path: str = "/v2/models/recsys/ready", timeout: float = 120):
    """Serving on `state` (its lake, registry and secrets), `env` added to the environment,
    `extra` merged into the recsys model's service options; yields once `ready_path`
    answers 2xx."""
    repo = tmp / "models"
    shutil.copytree(REPO / "serving" / "model_repository", repo)
    ports = {"http_port": free_port(), "grpc_port": free_port(), "metrics_port": free_port()}
    (repo / "settings.json").write_text(json.dumps({"parallel_workers": 0, **ports}))
    model_settings = repo / "recsys" / "model-settings.json"
    document = json.loads(model_settings.read_text())
    document["parameters"]["extra"].update(extra or {})
    model_settings.write_text(json.dumps(document))
    full_env = {**os.environ, "RECSYS_STATE_DIR": str(state),
                "RECSYS_REDIS_URL": "redis://127.0.0.1:6379/10", **(env or {})}
    log = tmp / "server.log"
    proc = subprocess.Popen([sys.executable, "-m", "recsys.serving.server", "start", str(repo)],
                            env=full_env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{ports['http_port']}"
    try:
        if not wait_for_http(url + ready_path, timeout, proc):
            raise AssertionError("serving not ready:\n" + log.read_text()[-3000:])
        token = full_env.get("RECSYS_SERVING_TOKEN") or \
            (state / "secrets" / "serving_token").read_text().strip()
        yield RunningServer(url, f"127.0.0.1:{ports['grpc_port']}", token.split(",")[0], log,
                            proc)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
