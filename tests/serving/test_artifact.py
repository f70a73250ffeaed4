"""The champion exported as a Seldon v2 / KServe artifact to a real S3 server, fetched the
way Seldon's agent does (every object under the storage URI), and served by a real MLServer
with no registry in reach: it answers with the exported version; a tampered file keeps the
model from loading."""
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
import requests

from recsys.serving.artifact import MODEL_FOLDER, SETTINGS_FILE
from recsys.tools.local_services import free_port, wait_for_http
from tests.factories import served_champion

pytestmark = pytest.mark.integration


def export_artifact(state: Path, uri: str, s3_server: str) -> dict:
    env = {**os.environ, "RECSYS_STATE_DIR": str(state), "RECSYS_S3_ENDPOINT_URL": s3_server,
           "RECSYS_NO_PROGRESS": "1"}
    done = subprocess.run([sys.executable, "-m", "recsys.cli.main", "registry", "export",
                           "--artifact", uri], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def fetch(s3_server: str, bucket: str, prefix: str, folder: Path) -> None:
    """What Seldon's agent (rclone) does with a storageUri: copy every object under it."""
    s3 = boto3.client("s3", endpoint_url=s3_server)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            path = folder / item["Key"][len(prefix):].lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(path))


def start_mlserver(repo: Path, state: Path, log: Path):
    ports = {"http_port": free_port(), "grpc_port": free_port(), "metrics_port": free_port()}
    (repo / "settings.json").write_text(json.dumps({"parallel_workers": 0, **ports}))
    env = {**os.environ, "RECSYS_STATE_DIR": str(state),
           "RECSYS_REDIS_URL": "redis://127.0.0.1:6379/10",
           "RECSYS_MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}  # no registry in reach
    proc = subprocess.Popen([sys.executable, "-m", "recsys.serving.server", "start", str(repo)],
                            env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{ports['http_port']}"


def test_exported_artifact_serves_its_version_and_refuses_tampered_files(tmp_path, s3_server):
    state = tmp_path / "state"
    processed, version = served_champion(state, events=4_000, seed=7)
    bucket = f"models-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    prefix = f"recsys/v{version}"
    written = export_artifact(state, f"s3://{bucket}/{prefix}", s3_server)
    assert written["version"] == version and len(written["sha256"]) == 64

    fetched = tmp_path / "fetched"
    fetch(s3_server, bucket, prefix, fetched / "recsys")
    settings = json.loads((fetched / "recsys" / SETTINGS_FILE).read_text())
    assert settings["parameters"]["uri"] == f"./{MODEL_FOLDER}"
    assert settings["parameters"]["extra"]["model_sha256"] == written["sha256"]
    served, tampered = tmp_path / "served", tmp_path / "tampered"
    shutil.copytree(fetched, served)
    shutil.copytree(fetched, tampered)
    (tampered / "recsys" / MODEL_FOLDER / "model.json").write_text(
        (tampered / "recsys" / MODEL_FOLDER / "model.json").read_text().replace("1", "2", 1))

    proc, url = start_mlserver(served, state, tmp_path / "served.log")
    try:
        assert wait_for_http(f"{url}/v2/models/recsys/ready", 120, proc), \
            (tmp_path / "served.log").read_text()[-3000:]
        token = (state / "secrets" / "serving_token").read_text().strip()
        user = str(processed.train["user_id"].iloc[0])
        answer = requests.post(f"{url}/v2/models/recsys/infer", timeout=10,
                               headers={"Authorization": f"Bearer {token}"},
                               json={"inputs": [{"name": "user_id", "datatype": "BYTES",
                                                 "shape": [1], "data": [user]}]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["parameters"]["model_version"] == version
        assert answer.json()["parameters"]["fallback"] is False
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    proc, url = start_mlserver(tampered, state, tmp_path / "tampered.log")
    try:
        assert not wait_for_http(f"{url}/v2/models/recsys/ready", 45, proc)
        assert "refusing to load them" in (tmp_path / "tampered.log").read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
