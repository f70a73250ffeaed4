"""The registered model needs MLflow, not this project: in a virtual environment without
`recsys`, `mlflow.pyfunc.load_model("models:/...@champion")` predicts and `mlflow models
serve --env-manager local` answers /invocations with what the project's own loader
recommends; a tampered model is refused there too.

No test may download, so the environment is a plain `python -m venv` (no system site
packages, no pip) whose one `.pth` line adds this interpreter's site-packages folder, as
`pip install mlflow` from a local wheelhouse would: the same MLflow and NumPy/pandas/SciPy/
PyArrow files, but not the `.pth` hooks in that folder, so the editable install of `recsys`
is not there (each child asserts that first). Console scripts are written the way pip
writes them."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys
import sysconfig
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest
import requests

from recsys.core.lifecycle.pyfunc import load_recommender
from recsys.core.lifecycle.tracking import client_for
from recsys.tools.local_services import stop_process_group, wait_for_http
from tests.conftest import free_port
from tests.factories import WritesAMarker, register_trained
from tests.serving.conftest import ROWS

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NAME = "recs"
USERS = ["u1", "u2", "u5", "someone-new"]
K = 3
SCRIPTS = {"mlflow": ("mlflow.cli", "cli"), "uvicorn": ("uvicorn.main", "main")}

LOAD = """
import importlib.util, json, sys
assert importlib.util.find_spec("recsys") is None, "recsys is importable: " + repr(sys.path)
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
out = model.predict(pd.DataFrame({"user_id": json.loads(sys.argv[2])}),
                    params={"k": int(sys.argv[3])})
print(json.dumps({"rows": out.to_dict("records"),
                  "recsys": sys.modules["recsys"].__file__,
                  "fit_only": sorted(m for m in ("sklearn", "surprise", "lightfm")
                                     if m in sys.modules)}))
"""


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A SQLite registry with an item_knn champion (v1) and a second version (v2)."""
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    champion = register_trained(uri, NAME, frame, "item_knn")
    other = register_trained(uri, NAME, frame, "popularity", champion=False)
    return uri, champion, other


@pytest.fixture(scope="module")
def bare_env(tmp_path_factory, registry):
    """(python, environment variables, working folder) of a fresh venv holding MLflow and
    its dependencies but not this project, pointed at the registry by MLFLOW_TRACKING_URI."""
    root = tmp_path_factory.mktemp("bare")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print("
                              "sysconfig.get_paths()['purelib'])"], check=True,
                             capture_output=True, text=True).stdout.strip()
    installed = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib, "installed.pth").write_text("\n".join(sorted(installed)) + "\n")
    for script, (module, function) in SCRIPTS.items():
        path = venv / "bin" / script
        path.write_text(f"#!{python}\nimport sys\nfrom {module} import {function}\n"
                        f"sys.exit({function}())\n")
        path.chmod(0o755)
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(root),
           "MLFLOW_TRACKING_URI": registry[0], "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    work = root / "work"
    work.mkdir()
    return python, env, work


def expected_rows(uri: str, version: str) -> list[dict]:
    """What the project's own loader recommends (its SHA-256 checked against the registry)."""
    client_for(uri)
    frame = load_recommender(f"models:/{NAME}/{version}").recommend(USERS, k=K)
    return json.loads(frame.to_json(orient="records"))


def same_rows(got: list[dict], expected: list[dict]) -> bool:
    columns = ["user_id", "item_id", "score", "rank", "fallback"]
    left, right = pd.DataFrame(got)[columns], pd.DataFrame(expected)[columns]
    pd.testing.assert_frame_equal(left, right, check_dtype=False)
    return True


def load_in(bare_env, model_uri: str) -> subprocess.CompletedProcess:
    python, env, work = bare_env
    return subprocess.run([str(python), "-c", LOAD, model_uri, json.dumps(USERS), str(K)],
                          env=env, cwd=work, capture_output=True, text=True, timeout=120)


def test_the_champion_loads_and_serves_through_mlflow_alone(registry, bare_env):
    uri, champion, _ = registry
    expected = expected_rows(uri, champion)
    assert {row["user_id"] for row in expected} == set(USERS)

    loaded = load_in(bare_env, f"models:/{NAME}@champion")
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    answer = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert same_rows(answer["rows"], expected)
    # the project's code came with the model, and fitting libraries were not needed
    assert "/artifacts/code/recsys/" in answer["recsys"] and "/work/" not in answer["recsys"]
    assert answer["fit_only"] == []

    python, env, work = bare_env
    port = free_port()
    server = subprocess.Popen(
        [str(python.parent / "mlflow"), "models", "serve", "-m", f"models:/{NAME}@champion",
         "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        assert wait_for_http(f"http://127.0.0.1:{port}/ping", 90, server), \
            server.communicate(timeout=10)[0].decode()[-3000:] if server.poll() is not None \
            else "mlflow models serve did not answer /ping"
        reply = requests.post(f"http://127.0.0.1:{port}/invocations", timeout=30, json={
            "dataframe_split": {"columns": ["user_id"], "data": [[u] for u in USERS]},
            "params": {"k": K}})
    finally:
        stop_process_group(server)
    assert reply.status_code == 200, reply.text
    assert same_rows(reply.json()["predictions"], expected)


def test_a_tampered_model_is_refused_by_mlflow_loading_and_nothing_is_unpickled(
        registry, bare_env, tmp_path):
    uri, _, other = registry
    client = client_for(uri)
    source = client.get_model_version(NAME, other).source  # models:/m-<logged model id>
    location = client.get_logged_model(source.removeprefix("models:/")).artifact_location
    folder = Path(urlparse(location).path) / "artifacts" / "recommender"
    state = folder / "model.json"  # a change that would still load without the check
    state.write_bytes(state.read_bytes() + b" ")
    marker = tmp_path / "pwned"  # and a pickle swapped in: refused before it is read
    (folder / "arrays.npz").write_bytes(pickle.dumps(WritesAMarker(str(marker))))

    refused = load_in(bare_env, f"models:/{NAME}/{other}")
    assert refused.returncode != 0
    assert "ModelIntegrityError" in refused.stderr
    assert "do not match the registry" in refused.stderr
    assert not marker.exists()
