"""The production profile's MLflow authentication: a real `mlflow server --app-name
basic-auth` with its registry and its users in PostgreSQL. Serving's read-only identity
cannot move an alias; the pipeline identity can."""
import json
import os
import secrets

import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from recsys.cli.main import main
from recsys.core.lifecycle.mlflow_identities import Identity, provision_identities
from recsys.core.lifecycle.registry import NO_CHAMPION, aliases, promote
from recsys.core.lifecycle.registry_lock import registry_lock
from recsys.core.lifecycle.tracking import client_for
from recsys.tools.local_services import (
    start_mlflow_server,
    stop_process_group,
    temporary_postgres_database,
    wait_for_http,
)
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
        config = config.replace(
            "postgresql+psycopg2://mlflow_auth@postgres.recsys.svc:5432/mlflow_auth", users_url)
        assert users_url in config  # the shipped file, with only the user store replaced
        (tmp_path / "basic_auth.ini").write_text(config)
        port = free_port()
        env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "basic_auth.ini"),
               "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
               "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16)}
        server = start_mlflow_server(registry_url, str(tmp_path / "artifacts"), port,
                                     "--app-name", "basic-auth", env=env,
                                     log=open(tmp_path / "mlflow.log", "w"))
        url = f"http://127.0.0.1:{port}"
        try:
            if not wait_for_http(f"{url}/health", 120, server):
                pytest.fail((tmp_path / "mlflow.log").read_text()[-3000:])
            fast = FastPasswordChecks(users_url)
            fast()
            yield url, registry_url, fast
        finally:
            stop_process_group(server)


class FastPasswordChecks:
    """Re-hash the test users' passwords with one PBKDF2 round. MLflow checks the password
    on every request, and its scrypt hash costs ~0.5 s of CPU per check on the 2-core test
    machine (a model registration is ~100 requests); the rights checked are the same."""

    PASSWORDS = {"admin": ADMIN_PASSWORD, **{user: f"{user}-password" for user in
                                             ("pipeline", "serving", "monitoring")}}

    def __init__(self, users_url: str):
        self.dsn = users_url.replace("postgresql+psycopg2://", "postgresql://")

    def __call__(self) -> None:
        import psycopg2
        from werkzeug.security import generate_password_hash

        with psycopg2.connect(self.dsn) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT username FROM users")
            for (user,) in cursor.fetchall():
                if user in self.PASSWORDS:
                    cursor.execute("UPDATE users SET password_hash = %s WHERE username = %s",
                                   (generate_password_hash(self.PASSWORDS[user],
                                                           method="pbkdf2:sha256:1"), user))


def as_user(monkeypatch, username: str, password: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


def test_serving_reads_but_cannot_move_champion_and_the_pipeline_can(auth_server, tmp_path,
                                                                     monkeypatch, capsys):
    url, lock_url, fast_password_checks = auth_server
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    as_user(monkeypatch, "admin", ADMIN_PASSWORD)
    monkeypatch.setenv("RECSYS_MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("RECSYS_REGISTERED_MODEL_NAME", NAME)
    (tmp_path / "pipeline").write_text("pipeline-password\n")
    (tmp_path / "serving").write_text("serving-password\n")
    assert main(["registry", "identities", "--writer", f"pipeline={tmp_path / 'pipeline'}",
                 "--reader", f"serving={tmp_path / 'serving'}"]) == 0
    granted = json.loads(capsys.readouterr().out)["granted"]
    assert (granted["pipeline"][f"registered_model {NAME}"],
            granted["serving"][f"registered_model {NAME}"]) == ("MANAGE", "READ")
    assert provision_identities(url, NAME, [Identity("serving", "serving-password", "reader")]) \
        == {"serving": {f"registered_model {NAME}": "READ"}}  # again: nothing breaks
    fast_password_checks()

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


def test_identities_own_the_experiments_so_readers_cannot_steer_users_or_starve_monitoring(
        auth_server, tmp_path, monkeypatch, capsys):
    """An earlier serving created `recsys-online-experiments` (MLflow gave it MANAGE there):
    `identities` takes that back, so neither serving nor monitoring can record an experiment
    that routes users to a version the gate never promoted; the pipeline can start one, and
    monitoring reads the champion's version tags and writes its drift tags, nothing more."""
    from mlflow.server.auth.client import AuthServiceClient

    from recsys.experiments.store import TRACKING_EXPERIMENT
    from recsys.monitoring.monitor import EXPERIMENT as MONITORING_EXPERIMENT

    url, lock_url, fast_password_checks = auth_server
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("RECSYS_MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("RECSYS_REGISTERED_MODEL_NAME", NAME)
    monkeypatch.setenv("RECSYS_REGISTRY_LOCK_URL", lock_url)
    as_user(monkeypatch, "admin", ADMIN_PASSWORD)
    AuthServiceClient(url).create_user("serving", "serving-password")
    fast_password_checks()
    as_user(monkeypatch, "serving", "serving-password")
    squatted = client_for(url).create_experiment(TRACKING_EXPERIMENT)  # as serving once did
    for user in ("pipeline", "serving", "monitoring"):
        (tmp_path / user).write_text(f"{user}-password\n")
    as_user(monkeypatch, "admin", ADMIN_PASSWORD)
    assert main(["registry", "identities", "--writer", f"pipeline={tmp_path / 'pipeline'}",
                 "--reader", f"serving={tmp_path / 'serving'}",
                 "--monitor", f"monitoring={tmp_path / 'monitoring'}"]) == 0
    fast_password_checks()
    granted = json.loads(capsys.readouterr().out)["granted"]
    experiments = [f"experiment {e}" for e in
                   ("recsys-training", TRACKING_EXPERIMENT, MONITORING_EXPERIMENT)]
    assert granted["pipeline"] == {f"registered_model {NAME}": "MANAGE",
                                   **dict.fromkeys(experiments[:2], "MANAGE"),
                                   experiments[2]: "READ"}
    assert granted["serving"] == {f"registered_model {NAME}": "READ",
                                  **dict.fromkeys(experiments, "READ")}
    assert granted["monitoring"] == {f"registered_model {NAME}": "READ",
                                     "registered_model_version *": "EDIT",
                                     **dict.fromkeys(experiments[:2], "READ"),
                                     experiments[2]: "EDIT"}

    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    as_user(monkeypatch, "pipeline", "pipeline-password")
    champion = register_trained(url, NAME, frame, "popularity", champion=False)
    promote(client_for(url), NAME, champion, "first", compared_with=NO_CHAMPION,
            lock=registry_lock(url, NAME, lock_url))
    unpromoted = register_trained(url, NAME, frame, "item_knn", champion=False)
    assert main(["experiment", "start", "pipeline-may", "--variants",
                 f"control=champion:50,b={unpromoted}:50"]) == 0
    capsys.readouterr()
    pipeline = client_for(url)
    online = pipeline.get_experiment_by_name(TRACKING_EXPERIMENT).experiment_id
    assert online == squatted
    run_id = pipeline.search_runs([online])[0].info.run_id

    denied = "PERMISSION_DENIED|Permission denied"
    for user in ("serving", "monitoring"):
        as_user(monkeypatch, user, f"{user}-password")
        reader = client_for(url)
        with pytest.raises(MlflowException, match=denied):
            reader.create_run(online, run_name="everyone-gets-b",
                              tags={"recsys.experiment.status": "running"})
        with pytest.raises(MlflowException, match=denied):
            reader.set_tag(run_id, "recsys.experiment.status", "stopped")
        with pytest.raises(MlflowException, match=denied):
            reader.set_registered_model_alias(NAME, "champion", unpromoted)
        with pytest.raises(MlflowException, match=denied):
            reader.create_model_version(NAME, source="models:/x", run_id=None)
        assert reader.get_model_version(NAME, champion).tags["gate.decision"] == "approved"
    as_user(monkeypatch, "serving", "serving-password")
    with pytest.raises(MlflowException, match=denied):
        client_for(url).set_model_version_tag(NAME, champion, "monitoring.drift_detected",
                                              "True")

    as_user(monkeypatch, "monitoring", "monitoring-password")
    monitoring = client_for(url)  # what `recsys monitor run` writes
    monitoring.set_model_version_tag(NAME, champion, "monitoring.drift_detected", "True")
    drift_runs = monitoring.get_experiment_by_name(MONITORING_EXPERIMENT).experiment_id
    monitoring.set_tag(monitoring.create_run(drift_runs).info.run_id, "drift_detected", "True")
    with pytest.raises(MlflowException, match=denied):
        monitoring.delete_model_version_tag(NAME, champion, "gate.decision")
    as_user(monkeypatch, "pipeline", "pipeline-password")
    assert aliases(client_for(url), NAME) == {"champion": champion, "challenger": unpromoted}
    assert client_for(url).get_model_version(NAME, champion).tags[
        "monitoring.drift_detected"] == "True"


def test_a_cross_site_write_with_credentials_and_a_foreign_host_are_refused(auth_server):
    """A browser holding the MLflow UI's basic-auth credentials sends them to any page's
    request: MLflow's security middleware refuses a state change from another origin, and a
    foreign Host (DNS rebinding), even with the admin's credentials."""
    import requests

    url, _, _ = auth_server
    admin = ("admin", ADMIN_PASSWORD)
    create = f"{url}/api/2.0/mlflow/experiments/create"
    by_name = f"{url}/api/2.0/mlflow/experiments/get-by-name"
    cross_site = requests.post(create, json={"name": "planted"}, auth=admin,
                               headers={"Origin": "https://attacker.example"}, timeout=30)
    assert cross_site.status_code == 403
    assert requests.get(by_name, params={"experiment_name": "planted"}, auth=admin,
                        timeout=30).status_code == 404
    rebound = requests.get(f"{url}/api/2.0/mlflow/experiments/search", auth=admin,
                           params={"max_results": 1},
                           headers={"Host": "attacker.example"}, timeout=30)
    assert rebound.status_code == 403
    same_site = requests.post(create, json={"name": "planted"}, auth=admin, timeout=30)
    assert same_site.status_code == 200
    assert requests.get(by_name, params={"experiment_name": "planted"}, auth=admin,
                        timeout=30).status_code == 200
