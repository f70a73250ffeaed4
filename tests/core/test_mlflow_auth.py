"""The production profile's MLflow authentication: a real `mlflow server --app-name
basic-auth` with its registry and its users in PostgreSQL. Serving's read-only identity
cannot move an alias; the pipeline identity can."""
import json
import os
import secrets
import subprocess
import sys

import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from recsys.benchmarks.local_services import temporary_postgres_database, wait_for_http
from recsys.cli.main import main
from recsys.core.mlflow_identities import Identity, provision_identities
from recsys.core.registry import NO_CHAMPION, aliases, promote
from recsys.core.registry_lock import registry_lock
from recsys.core.tracking import client_for
from tests.conftest import REPO, free_port
from tests.factories import register_trained
from tests.serving.conftest import ROWS

NAME = "recs"
ADMIN_PASSWORD = "admin-password-for-tests"
pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def auth_server(tmp_path):
    with temporary_postgres_database("mlflow_registry") as registry_url, \
            temporary_postgres_database("mlflow_auth") as users_url:
        config = (REPO / "infra" / "mlflow" / "basic_auth.ini").read_text()
        config = config.replace("postgresql://mlflow_auth@postgres.recsys.svc:5432/mlflow_auth",
                                users_url)
        assert users_url in config  # the shipped file, with only the user store replaced
        (tmp_path / "basic_auth.ini").write_text(config)
        port = free_port()
        env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "basic_auth.ini"),
               "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
               "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16)}
        server = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "mlflow"), "server",
             "--app-name", "basic-auth", "--backend-store-uri", registry_url,
             "--artifacts-destination", str(tmp_path / "artifacts"),
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env, stdout=open(tmp_path / "mlflow.log", "w"), stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            if not wait_for_http(f"{url}/health", 120, server):
                pytest.fail((tmp_path / "mlflow.log").read_text()[-3000:])
            yield url, registry_url
        finally:
            server.terminate()
            server.wait(timeout=30)


def as_user(monkeypatch, username: str, password: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


def test_serving_reads_but_cannot_move_champion_and_the_pipeline_can(auth_server, tmp_path,
                                                                     monkeypatch, capsys):
    url, lock_url = auth_server
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    as_user(monkeypatch, "admin", ADMIN_PASSWORD)
    monkeypatch.setenv("RECSYS_MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("RECSYS_REGISTERED_MODEL_NAME", NAME)
    (tmp_path / "pipeline").write_text("pipeline-password\n")
    (tmp_path / "serving").write_text("serving-password\n")
    assert main(["registry", "identities", "--writer", f"pipeline={tmp_path / 'pipeline'}",
                 "--reader", f"serving={tmp_path / 'serving'}"]) == 0
    assert json.loads(capsys.readouterr().out)["granted"] == {"pipeline": "MANAGE",
                                                              "serving": "READ"}
    assert provision_identities(url, NAME, [Identity("serving", "serving-password", False)]) == \
        {"serving": "READ"}  # again: nothing breaks

    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    lock = registry_lock(url, NAME, lock_url)
    as_user(monkeypatch, "pipeline", "pipeline-password")
    v1 = register_trained(url, NAME, frame, "popularity", champion=False)
    promote(client_for(url), NAME, v1, "first", compared_with=NO_CHAMPION, lock=lock)
    v2 = register_trained(url, NAME, frame, "item_knn", champion=False)

    as_user(monkeypatch, "serving", "serving-password")
    serving = client_for(url)
    assert aliases(serving, NAME) == {"champion": v1, "challenger": v2}  # it may read
    with pytest.raises(MlflowException, match="PERMISSION_DENIED|Permission denied"):
        promote(serving, NAME, v2, "serving tries", compared_with=v1, lock=lock)
    with pytest.raises(MlflowException, match="PERMISSION_DENIED|Permission denied"):
        serving.set_registered_model_alias(NAME, "champion", v2)
    with pytest.raises(MlflowException, match="PERMISSION_DENIED|Permission denied"):
        serving.create_model_version(NAME, source="models:/x", run_id=None)

    as_user(monkeypatch, "nobody", "wrong")
    with pytest.raises(Exception, match="401|Unauthorized|credentials"):
        aliases(client_for(url), NAME)  # anonymous or wrong password: not even a read

    as_user(monkeypatch, "pipeline", "pipeline-password")
    assert aliases(client_for(url), NAME) == {"champion": v1, "challenger": v2}  # unmoved
    promote(client_for(url), NAME, v2, "second", compared_with=v1, lock=lock)
    assert aliases(client_for(url), NAME) == {"champion": v2, "previous": v1,
                                              "challenger": v2}
