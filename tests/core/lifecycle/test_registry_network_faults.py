"""The registry behind a network that fails: a real `mlflow server` on PostgreSQL, reached
through a TCP proxy the test cuts while evaluate reads the champion and while promote moves
the aliases."""
import threading
from urllib.parse import urlparse

import pandas as pd
import pytest

from recsys.components.evaluate.compare import evaluate_candidates
from recsys.components.gate.gate import run_gate
from recsys.core.errors import RegistryUnavailable
from recsys.core.lifecycle.gate import DEFAULT_POLICY
from recsys.core.lifecycle.registry import aliases, promote
from recsys.core.lifecycle.registry_lock import registry_lock
from recsys.core.lifecycle.tracking import client_for
from tests.factories import logged_model, register_trained
from tests.serving.conftest import ROWS
from tests.tcp_proxy import TcpProxy

NAME = "recs"
pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def cut_registry(mlflow_server_on_postgres, monkeypatch):
    """(proxied tracking URL, the proxy, the PostgreSQL URL the alias lock uses)."""
    url, database_url = mlflow_server_on_postgres
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    proxy = TcpProxy("127.0.0.1", urlparse(url).port)
    yield proxy.url, proxy, database_url
    proxy.close()


def test_a_cut_during_evaluate_fails_the_step_instead_of_gating_against_the_baseline(
        cut_registry):
    url, proxy, database_url = cut_registry
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    client = client_for(url)
    champion = register_trained(url, NAME, frame, "popularity", champion=False)
    promote(client, NAME, champion, "first", compared_with="none",
            lock=registry_lock(url, NAME, database_url))
    candidate = logged_model(url, "candidates", frame, "item_knn")
    versions_before = len(client.search_model_versions(f"name='{NAME}'"))

    proxy.cut()
    with pytest.raises(RegistryUnavailable, match="model registry unavailable"):
        evaluate_candidates({"item_knn": {"model": candidate.model}}, frame, frame, url, NAME,
                            "ndcg_at_10")
    proxy.restore()
    assert len(client.search_model_versions(f"name='{NAME}'")) == versions_before

    # the step's retry, with the registry back: compared with the champion, not the baseline
    evaluation = evaluate_candidates(
        {"item_knn": {"model": candidate.model, "run_id": candidate.run_id,
                      "model_uri": candidate.model_uri}}, frame, frame, url, NAME, "ndcg_at_10")
    assert evaluation.champion is not None and evaluation.champion.version == champion
    outcome = run_gate(evaluation, DEFAULT_POLICY, url, NAME)
    assert outcome.compared_with == champion
    tags = client.get_model_version(NAME, outcome.version).tags
    assert tags["gate.compared_with_version"] == champion
    assert tags["gate.against"] == f"champion v{champion}"


def test_a_cut_in_the_middle_of_promote_leaves_the_aliases_exactly_as_they_were(
        cut_registry, monkeypatch):
    url, proxy, database_url = cut_registry
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    client = client_for(url)
    lock = registry_lock(url, NAME, database_url)
    v1 = register_trained(url, NAME, frame, "popularity", champion=False)
    promote(client, NAME, v1, "first", compared_with="none", lock=lock)
    v2 = register_trained(url, NAME, frame, "item_knn", champion=False)
    promote(client, NAME, v2, "second", compared_with=v1, lock=lock)
    v3 = register_trained(url, NAME, frame, "ease", champion=False)
    before = aliases(client, NAME)
    assert before == {"champion": v2, "previous": v1, "challenger": v3}

    real_write = client.set_registered_model_alias
    cuts = []

    def cut_after_the_first_write(name, alias, version):
        real_write(name, alias, version)
        if not cuts:  # the network goes away for 3 s right after `previous` moved
            cuts.append(alias)
            proxy.cut()
            threading.Timer(3.0, proxy.restore).start()

    monkeypatch.setattr(client, "set_registered_model_alias", cut_after_the_first_write)
    with pytest.raises(Exception, match="Connection|connection|Remote|reset|aborted"):
        promote(client, NAME, v3, "third", compared_with=v2, lock=lock)
    monkeypatch.undo()
    assert cuts == ["previous"]  # the move really was cut half-way
    assert aliases(client, NAME) == before  # restored once the network came back
    with registry_lock(url, NAME, database_url, timeout=1):  # and the lock was released
        assert aliases(client, NAME)["champion"] == v2
    promote(client, NAME, v3, "third, again", compared_with=v2, lock=lock)
    assert aliases(client, NAME) == {"champion": v3, "previous": v2, "challenger": v3}


def test_a_registry_frozen_during_the_gate_fails_it_naming_the_registry_and_moves_nothing(
        cut_registry):
    url, proxy, database_url = cut_registry
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    client = client_for(url)
    lock = registry_lock(url, NAME, database_url)
    champion = register_trained(url, NAME, frame, "popularity", champion=False)
    promote(client, NAME, champion, "first", compared_with="none", lock=lock)
    candidate = logged_model(url, "candidates", frame, "item_knn")
    evaluation = evaluate_candidates(
        {"item_knn": {"model": candidate.model, "run_id": candidate.run_id,
                      "model_uri": candidate.model_uri}}, frame, frame, url, NAME, "ndcg_at_10")
    before = aliases(client, NAME)
    versions_before = len(client.search_model_versions(f"name='{NAME}'"))

    proxy.freeze()  # connections are accepted, nothing is ever answered
    failures = []

    def gate():
        try:
            run_gate(evaluation, DEFAULT_POLICY, url, NAME, lock=lock)
        except Exception as error:  # noqa: BLE001 - what the gate raised is the assertion
            failures.append(error)

    worker = threading.Thread(target=gate, daemon=True)
    worker.start()
    worker.join(timeout=60)
    finished = not worker.is_alive()
    proxy.restore()
    assert finished, "the gate waited on a frozen registry without bound"
    assert len(failures) == 1
    assert isinstance(failures[0], RegistryUnavailable), repr(failures[0])
    assert "model registry unavailable" in str(failures[0])
    assert aliases(client, NAME) == before
    assert len(client.search_model_versions(f"name='{NAME}'")) == versions_before
