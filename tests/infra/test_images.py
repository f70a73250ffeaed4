"""The images, built here with podman (`make image`) and run: the collector and serving
answer their health routes and real requests, as a non-root user, without compilers."""
import json
import os
import re
import shutil
import subprocess
import time
import uuid

import pytest
import requests

from recsys.core.settings import Settings
from recsys.tools.local_services import wait_for_http
from tests.conftest import REPO, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("podman") is None,
                                 reason="podman is not installed (apt-get install podman runc "
                                        "debootstrap; see docs/deployment.md)")]
VERSION = Settings().image.rsplit(":", 1)[1]
IMAGE, SERVING_IMAGE = Settings().image, f"localhost/recsys-serving:{VERSION}"
SPARK_IMAGE = Settings().spark_image_tag
SELDON_V1_IMAGE = f"localhost/recsys-seldon-v1:{VERSION}"
STREAM_IMAGE = f"localhost/recsys-stream:{VERSION}"


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                          check=check)


@pytest.fixture(scope="module")
def images():
    """`make image`: incremental (the dependency layer is reused while the pins hold)."""
    built = subprocess.run(["make", "--no-print-directory", "image"], cwd=REPO,
                           capture_output=True, text=True, timeout=1800)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return IMAGE, SERVING_IMAGE


@pytest.fixture
def container_name():
    name = f"recsys-test-{uuid.uuid4().hex[:8]}"
    yield name
    podman("rm", "-f", name, check=False)


def test_the_project_image_is_non_root_without_build_tools(images):
    image, _ = images
    who = podman("run", "--rm", "--no-healthcheck", "--entrypoint", "sh", image, "-c",
                 "id -u; command -v gcc cc make || echo no-compiler; touch /work/w && echo ok")
    assert who.stdout.split() == ["1000", "no-compiler", "ok"], who.stdout + who.stderr
    assert "usage: recsys" in podman("run", "--rm", "--no-healthcheck", image).stdout


def test_the_stream_image_holds_the_stream_stack_only_on_its_lock(images):
    listed = podman("run", "--rm", "--no-healthcheck", STREAM_IMAGE, "sh", "-c",
                    "id -u; pip check; pip list --format json")
    lines = listed.stdout.splitlines()
    assert lines[0] == "1000" and "No broken requirements" in lines[1], listed.stdout[-2000:]
    installed = {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(lines[2])}
    assert {"fastapi", "starlette", "uvicorn", "feast", "confluent-kafka", "redis",
            "recsys-mlops"} <= set(installed)
    assert not {"mlserver", "mlflow", "mlflow-skinny", "kfp", "evidently", "scikit-learn",
                "scikit-surprise", "rectools-lightfm", "scipy", "torch"} & set(installed)
    pinned = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)$",
                             (REPO / "constraints-stream.txt").read_text(), re.MULTILINE))
    assert installed["fastapi"] == pinned["fastapi"]
    assert installed["starlette"] == pinned["starlette"]


def test_the_collector_runs_in_the_stream_image(images, container_name):
    image = STREAM_IMAGE
    port, stream = free_port(), f"test:{uuid.uuid4().hex[:8]}"
    podman("run", "-d", "--name", container_name, "--network", "host", "--no-healthcheck",
           "-e", "RECSYS_COLLECTOR_WRITE_KEYS=container-key", "-e", f"RECSYS_EVENT_STREAM={stream}",
           image, "recsys", "stream", "collector", "--port", str(port), "--allow-volatile-bus")
    url = f"http://127.0.0.1:{port}"
    assert wait_for_http(f"{url}/health", 60), podman("logs", container_name).stderr[-2000:]
    event = {"event_id": "c1", "user_id": "u1", "event_type": "view",
             "timestamp": int(time.time() * 1000) - 1000, "properties": {"product_id": "p1"}}
    answer = requests.post(f"{url}/events", json=event, timeout=10,
                           headers={"Authorization": "Bearer container-key"})
    assert answer.status_code == 202 and answer.json()["accepted"] == 1
    # the image's own HEALTHCHECK command, run inside the container
    probe = podman("exec", container_name, "python3", "-m", "recsys.cli.probe",
                   f"{url}/health", check=False)
    assert probe.returncode == 0, probe.stderr
    import redis

    redis.Redis().delete(stream, f"{stream}:seen:c1")


def test_serving_runs_in_its_image_and_answers_with_a_token(images, container_name, tmp_path):
    from tests.factories import served_champion

    _, serving_image = images
    state = tmp_path / "state"  # mounted at the same path: MLflow records absolute paths
    processed, version = served_champion(state, events=4_000, seed=5)
    repo = tmp_path / "models"
    shutil.copytree(REPO / "serving" / "model_repository", repo)
    ports = {"http_port": free_port(), "grpc_port": free_port(), "metrics_port": free_port()}
    (repo / "settings.json").write_text(json.dumps({"parallel_workers": 0, **ports}))
    for path in (tmp_path, *tmp_path.rglob("*")):  # the container user (1000) writes there
        os.chmod(path, 0o777 if path.is_dir() else 0o666)
    podman("run", "-d", "--name", container_name, "--network", "host", "--no-healthcheck",
           "-v", f"{tmp_path}:{tmp_path}", "-v", f"{repo}:/opt/recsys/model_repository:ro",
           "-e", f"RECSYS_STATE_DIR={state}", "-e", "RECSYS_REDIS_URL=redis://127.0.0.1:6379/12",
           "-e", "MLSERVER_HOST=127.0.0.1",  # host network in a test: loopback only
           serving_image)
    url = f"http://127.0.0.1:{ports['http_port']}"
    assert wait_for_http(f"{url}/v2/health/ready", 180), \
        podman("logs", container_name).stderr[-3000:]
    token = (state / "secrets" / "serving_token").read_text().strip()  # made in the container
    user = str(processed.train["user_id"].iloc[0])
    assert requests.get(f"{url}/recommend/{user}", timeout=10).status_code == 401
    answer = requests.get(f"{url}/recommend/{user}?top_k=3", timeout=10,
                          headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and len(answer.json()["item_ids"]) == 3
    assert answer.json()["model_version"] == version and answer.json()["fallback"] is False
    probe = podman("exec", container_name, "python3", "-m", "recsys.cli.probe",
                   f"{url}/v2/health/ready", check=False)
    assert probe.returncode == 0, probe.stderr


def test_the_seldon_v1_image_serves_an_exported_champion(images, container_name, tmp_path):
    """The seldon-core v1 wrapper's image (Python 3.12) starts as uid 1000 with the model
    folder read-only and answers the v1 protocol, the integrity check included."""
    import pandas as pd

    from recsys.core.models.storage import save_model
    from recsys.core.models.zoo import build_model
    from tests.serving.conftest import ROWS

    model = tmp_path / "champion"
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    digest = save_model(build_model("item_knn", shrinkage=0.0).fit(frame), model)
    for path in (model, *model.rglob("*")):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    port = free_port()
    podman("run", "-d", "--name", container_name, "-p", f"127.0.0.1:{port}:9000",
           "-v", f"{model}:/models/champion:ro", "-e", "RECSYS_MODEL_PATH=/models/champion",
           "-e", f"RECSYS_MODEL_SHA256={digest}", SELDON_V1_IMAGE)
    url = f"http://127.0.0.1:{port}"
    assert wait_for_http(f"{url}/health/ping", 120), podman("logs", container_name).stderr[-3000:]
    answer = requests.post(f"{url}/api/v1.0/predictions", timeout=10,
                           json={"jsonData": {"user_id": "u1", "k": 2}})
    assert answer.status_code == 200, answer.text
    assert set(answer.json()["jsonData"]["item_ids"]) == {"c", "d"}
    assert answer.json()["jsonData"]["fallback"] is False
    identity = podman("exec", container_name, "sh", "-c",
                      "id -u; python3 -c 'import sys; print(sys.version_info[:2])'; "
                      "command -v cc gcc || echo no-compiler")
    assert identity.stdout.split("\n")[:3] == ["1000", "(3, 12)", "no-compiler"]
    tampered = f"{container_name}-tampered"
    try:
        podman("run", "-d", "--name", tampered, "-v", f"{model}:/models/champion:ro",
               "-e", "RECSYS_MODEL_PATH=/models/champion", "-e", f"RECSYS_MODEL_SHA256={'0' * 64}",
               SELDON_V1_IMAGE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "SHA-256" not in podman(
                "logs", tampered, check=False).stderr:
            time.sleep(1)
        assert "SHA-256" in podman("logs", tampered).stderr
    finally:
        podman("rm", "-f", tampered, check=False)


def test_the_spark_image_runs_the_data_job_as_a_sparkapplication_driver(images, tmp_path):
    """What the Spark Operator starts in the driver pod (`driver`: spark-submit in client
    mode, the job module as the application), with a local master instead of the cluster's:
    the launcher's settings stand, and the lake equals the pandas engine's on the host."""
    import pandas as pd

    from recsys.components.preprocess.config import PreprocessConfig
    from recsys.components.validate.rules import ValidationConfig
    from recsys.core.data.lake import Lake
    from recsys.core.data.synthetic.config import DirtConfig, ShopConfig
    from recsys.core.data.synthetic.generate import generate_shop, write_shop
    from recsys.pipelines.spark_data.application import JOB_FILE
    from recsys.pipelines.spark_data.job import SparkDataJob
    from tests.spark.engines import assert_same_lakes, run_pandas

    shell = podman("run", "--rm", SPARK_IMAGE, "sh", "-c",  # through the entrypoint
                   "id -u; command -v gcc cc make || echo no-compiler; java -version 2>&1")
    assert shell.stdout.split()[:3] == ["1000", "no-compiler", "openjdk"], shell.stdout
    now = pd.Timestamp.now(tz="UTC").floor("D")
    config = ShopConfig(events=5_000, seed=13, end=now.to_pydatetime(),
                        dirt=DirtConfig(duplicates=0.01, missing_price=0.02, malformed=0.005))
    source, in_container = tmp_path / "shop.jsonl", tmp_path / "spark"
    write_shop(generate_shop(config), "jsonl", source, config)
    in_container.mkdir()
    for path in (tmp_path, in_container):  # the container's user (1000) writes its lake
        os.chmod(path, 0o777)
    job = SparkDataJob(source=str(source), lake_uri=str(in_container),
                       result_key="jobs/spark_data/driver.json")
    driver = podman("run", "--rm", "--network", "host", "-v", f"{tmp_path}:{tmp_path}",
                    SPARK_IMAGE, "driver", "--master", "local[2]",
                    "--conf", "spark.sql.shuffle.partitions=3", "--name", "recsys-data-test",
                    JOB_FILE, "--job", job.model_dump_json(), timeout=600, check=False)
    assert driver.returncode == 0, driver.stderr[-4000:]
    assert "session on local[2] (driver memory 1g, 3 shuffle partitions, launched by " \
           "spark-submit)" in driver.stdout, driver.stdout[-4000:]  # the job's log
    on_host = Lake(str(tmp_path / "pandas"))
    ran = run_pandas(str(source), on_host, now, ValidationConfig(max_bad_ratio=job.max_bad_ratio),
                     PreprocessConfig(holdout_days=job.holdout_days,
                                      lookback_days=job.lookback_days,
                                      popularity_half_life_days=job.half_life_days))
    result = Lake(str(in_container)).read_json(job.result_key)
    counts = assert_same_lakes(on_host, Lake(str(in_container)), ran, {
        "extract": result["extract"], "quality": result["quality"],
        "snapshot": result["snapshot"], "tables": result["feature_tables"]})
    assert counts["clean/events"] > 4_800 and counts["quarantine/events"] > 0
