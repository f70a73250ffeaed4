"""Serving started while its registry (a real `mlflow server`) is unreachable: it comes up
on the popularity fallback, takes the champion and the running experiment once the
registry is back (through its pollers), and never creates anything in the registry."""
import time
from urllib.parse import urlparse

import pytest

from recsys.components.train.train import fingerprint_of, training_sessions
from recsys.core.lifecycle.registry_lock import registry_lock
from recsys.core.lifecycle.tracking import client_for
from recsys.experiments.definition import ExperimentDefinition, Variant
from recsys.experiments.store import TRACKING_EXPERIMENT, lock_name, open_store
from recsys.serving.model_source import BASELINE_VERSION
from tests.factories import published_shop, register_trained
from tests.serving.mlserver_process import running_server
from tests.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def wait_until(check, seconds: float = 90):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"not reached within {seconds} s")


def test_an_unreachable_registry_at_start_serves_the_fallback_then_the_champion(
        mlflow_server_on_postgres, tmp_path):
    url, database_url = mlflow_server_on_postgres
    settings, processed = published_shop(tmp_path / "state", events=3_000, seed=4)
    name = settings.registered_model_name
    champion = register_trained(url, name, processed.train, "item_knn",
                                fingerprint_of(processed.summary),
                                sessions=training_sessions(processed), lock_url=database_url)
    proxy = TcpProxy("127.0.0.1", urlparse(url).port)
    proxy.cut()
    env = {"RECSYS_MLFLOW_TRACKING_URI": proxy.url}
    options = {"watch_seconds": 1, "experiment_watch_seconds": 1}
    try:
        with running_server(tmp_path, tmp_path / "state", env, options) as running:
            http = running.session()
            user = str(processed.train["user_id"].iloc[0])
            answer = http.get(f"{running.url}/recommend/{user}?top_k=5", timeout=10).json()
            assert answer["model_version"] == BASELINE_VERSION and answer["fallback"] is True
            assert len(answer["item_ids"]) == 5
            status = http.get(f"{running.url}/recsys/status", timeout=10).json()
            assert status["fallback"] is True and "no registered version" in \
                status["fallback_reason"]

            proxy.restore()
            status = wait_until(lambda: (s := http.get(f"{running.url}/recsys/status",
                                                       timeout=10).json())
                                ["model_version"] == champion and s)
            assert status["fallback"] is False and status["experiment"] is None
            answer = http.get(f"{running.url}/recommend/{user}?top_k=5", timeout=10).json()
            assert answer["model_version"] == champion and answer["fallback"] is False
            # serving only read: the experiments' tracking experiment does not exist yet
            assert client_for(url).get_experiment_by_name(TRACKING_EXPERIMENT) is None

            store = open_store(url, name)  # the pipeline identity creates it
            store.start(ExperimentDefinition(name="after-outage", variants=(
                Variant(label="control", target="popularity", weight=50),
                Variant(label="b", target="champion", weight=50))),
                registry_lock(url, lock_name("recommend"), database_url), by="test")
            status = wait_until(lambda: (s := http.get(f"{running.url}/recsys/status",
                                                       timeout=10).json())["experiment"] and s)
            assert status["experiment"]["name"] == "after-outage"
            assert status["experiment"]["variants"]["b"]["version"] == champion
            assert status["experiment_error"] is None
    finally:
        proxy.close()
