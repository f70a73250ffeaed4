"""The seldon-core v1 wrapper, run by seldon-core-microservice in the Python 3.12 env."""
import os
import signal
import subprocess

import pandas as pd
import pytest
import requests

from recsys.core.models.storage import save_model
from recsys.core.models.zoo import build_model
from recsys.tools.local_services import wait_for_http
from tests.conftest import REPO, free_port
from tests.serving.conftest import ROWS

SELDON_BIN = REPO / ".venv-seldon" / "bin" / "seldon-core-microservice"


@pytest.mark.integration
@pytest.mark.slow
def test_v1_microservice_serves_the_exported_champion(tmp_path):
    assert SELDON_BIN.exists(), "run `make seldon-v1-env` (make test does)"
    path = tmp_path / "champion"
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    digest = save_model(build_model("item_knn", shrinkage=0.0).fit(frame), path)  # numpy 2
    port = free_port()
    env = {**os.environ, "RECSYS_MODEL_PATH": str(path), "RECSYS_MODEL_SHA256": digest}
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen([str(SELDON_BIN), "recsys.serving.seldon_v1.SeldonRecommender",
                             "--service-type", "MODEL", "--http-port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api/v1.0/predictions"
    try:
        assert wait_for_http(f"http://127.0.0.1:{port}/health/ping", 60, proc)
        one = requests.post(url, json={"jsonData": {"user_id": "u1", "k": 2}}, timeout=10)
        assert one.status_code == 200, one.text
        body = one.json()
        assert body["jsonData"]["fallback"] is False
        assert set(body["jsonData"]["item_ids"]) == {"c", "d"}
        assert body["meta"]["tags"]["path"] == "model"
        many = requests.post(url, json={"data": {"ndarray": ["u1", "stranger"]}}, timeout=10)
        answers = many.json()["jsonData"]["recommendations"]
        assert [a["user_id"] for a in answers] == ["u1", "stranger"]
        assert answers[1]["item_ids"][0] == "e" and answers[1]["fallback"] is True
        crowd = requests.post(url, json={"data": {"ndarray": [f"u{n}" for n in range(101)]}},
                              timeout=10)
        assert crowd.status_code == 400 and "at most 100 users per request" in crowd.text
        bad_k = requests.post(url, json={"jsonData": {"user_id": "u1", "k": 0}}, timeout=10)
        assert bad_k.status_code == 400 and "k must be from 1" in bad_k.text
        status = requests.get(f"http://127.0.0.1:{port}/health/status", timeout=10).json()
        assert status["jsonData"]["items"] == 6
    finally:  # gunicorn and its workers form one process group
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


def test_one_column_rows_are_their_user_and_wider_rows_are_refused(tmp_path, monkeypatch):
    """`data.ndarray` rows as seldon-core v1 clients send them: ["u1"] or [["u1"]]."""
    import numpy as np

    from recsys.serving.requests import RequestError
    from recsys.serving.seldon_v1 import SeldonRecommender

    path = tmp_path / "champion"
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    digest = save_model(build_model("item_knn", shrinkage=0.0).fit(frame), path)
    monkeypatch.setenv("RECSYS_MODEL_SHA256", digest)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("RECSYS_CACHE_TTL_SECONDS", "0")
    wrapper = SeldonRecommender(model_path=str(path))
    for rows in (["u1", "stranger"], [["u1"], ["stranger"]], np.array([["u1"], ["stranger"]])):
        answers = wrapper._predict(rows)["recommendations"]
        assert [a["user_id"] for a in answers] == ["u1", "stranger"], rows
        assert set(answers[0]["item_ids"][:2]) == {"c", "d"} and answers[0]["fallback"] is False
        assert answers[1]["fallback"] is True
    with pytest.raises(RequestError, match="each row is one user id, got a row of 2 values"):
        wrapper._predict([["u1", "u2"]])
