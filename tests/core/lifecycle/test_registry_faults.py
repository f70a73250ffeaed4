"""The registry under faults: reads that fail loudly, alias moves restored exactly, and
compare-and-set promotion under a lock that holds across threads and processes."""
import queue
import subprocess
import sys
import threading

import pytest
from mlflow import MlflowClient

from recsys.core.errors import RegistryUnavailable
from recsys.core.lifecycle.gate import Decision
from recsys.core.lifecycle.registry import (
    NO_CHAMPION,
    StaleComparison,
    aliases,
    promote,
    register_candidate,
    register_with_decision,
)
from recsys.core.lifecycle.registry_lock import RegistryBusy, registry_lock

NAME = "recs"


def client_for(uri):
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def register(uri, compared_with):
    client = client_for(uri)
    run = client.create_run(_experiment(client))
    return register_with_decision(client, NAME, f"runs:/{run.info.run_id}/model",
                                  run.info.run_id, Decision(True, ["test"]), {}, {},
                                  compared_with=compared_with)


def _experiment(client):
    found = client.get_experiment_by_name("candidates")
    return found.experiment_id if found else client.create_experiment("candidates")


def try_promote(uri, version, compared_with, results):
    try:
        promote(client_for(uri), NAME, version, "race", compared_with=compared_with,
                lock=registry_lock(uri, NAME))
        results.put((version, "promoted"))
    except StaleComparison:
        results.put((version, "stale"))


PROMOTE_IN_A_PROCESS = """
import sys
from mlflow import MlflowClient
from recsys.core.lifecycle.registry import StaleComparison, promote
from recsys.core.lifecycle.registry_lock import registry_lock
uri, version, compared_with = sys.argv[1:4]
try:
    promote(MlflowClient(tracking_uri=uri, registry_uri=uri), "recs", version, "race",
            compared_with=compared_with, lock=registry_lock(uri, "recs"))
    print(version, "promoted")
except StaleComparison:
    print(version, "stale")
"""


@pytest.fixture
def uri(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.mark.slow
def test_racing_promotions_against_one_champion_promote_exactly_one(uri):
    v1 = register(uri, NO_CHAMPION)
    promote(client_for(uri), NAME, v1, "first", compared_with=NO_CHAMPION,
            lock=registry_lock(uri, NAME))
    racers = [register(uri, v1) for _ in range(4)]  # all gated against champion v1
    processes = [subprocess.Popen([sys.executable, "-c", PROMOTE_IN_A_PROCESS, uri, v, v1],
                                  stdout=subprocess.PIPE, text=True) for v in racers[2:]]
    results = queue.Queue()
    threads = [threading.Thread(target=try_promote, args=(uri, v, v1, results))
               for v in racers[:2]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for process in processes:
        out, _ = process.communicate(timeout=120)
        results.put(tuple(out.split()[-2:]))
    outcomes = dict(results.get(timeout=10) for _ in racers)
    winners = [v for v, outcome in outcomes.items() if outcome == "promoted"]
    assert len(winners) == 1 and sorted(outcomes) == sorted(racers)
    state = aliases(client_for(uri), NAME)
    assert state["champion"] == winners[0] and state["previous"] == v1
    client = client_for(uri)
    for loser in set(racers) - set(winners):
        assert "but the champion is now" in \
            client.get_model_version(NAME, loser).tags["gate.stale_comparison"]


def test_an_unreachable_registry_raises_instead_of_answering_no_champion(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    down = client_for("http://127.0.0.1:1")
    with pytest.raises(RegistryUnavailable, match="model registry unavailable"):
        aliases(down, NAME)
    with pytest.raises(RegistryUnavailable):
        register_candidate(down, NAME, "runs:/x/model", "x")


def test_a_missing_model_is_the_only_empty_answer(uri):
    assert aliases(client_for(uri), "never-registered") == {}


def test_a_failed_alias_move_restores_exactly_what_was_read(uri, monkeypatch):
    client = client_for(uri)
    v1 = register(uri, NO_CHAMPION)
    promote(client, NAME, v1, "first", compared_with=NO_CHAMPION, lock=registry_lock(uri, NAME))
    v2 = register(uri, v1)
    promote(client, NAME, v2, "second", compared_with=v1, lock=registry_lock(uri, NAME))
    v3 = register(uri, v2)
    before = aliases(client, NAME)
    real = client.set_registered_model_alias

    def fail_on_champion(name, alias, version):
        if alias == "champion":
            raise RuntimeError("registry went away mid-move")
        return real(name, alias, version)

    monkeypatch.setattr(client, "set_registered_model_alias", fail_on_champion)
    with pytest.raises(RuntimeError, match="mid-move"):
        promote(client, NAME, v3, "third", compared_with=v2, lock=registry_lock(uri, NAME))
    monkeypatch.undo()
    assert aliases(client, NAME) == before == {"champion": v2, "previous": v1,
                                                "challenger": v3}


def holds(lock) -> bool:
    """Enter and leave `lock`; True once it was held."""
    with lock:
        return True


def test_the_file_lock_excludes_a_second_holder(uri):
    with registry_lock(uri, NAME):
        with pytest.raises(RegistryBusy, match="held for over"):
            holds(registry_lock(uri, NAME, timeout=0.2))
    assert holds(registry_lock(uri, NAME, timeout=0.2))  # free again
    reused = registry_lock(uri, NAME, timeout=0.2)
    assert holds(reused) and holds(reused)  # one lock object serves move after move


@pytest.mark.integration
def test_the_postgresql_advisory_lock_excludes_a_second_session():
    url = "postgresql://postgres@127.0.0.1:5432/postgres"
    with registry_lock("http://mlflow:5000", NAME, lock_url=url):
        with pytest.raises(RegistryBusy, match="advisory lock"):
            holds(registry_lock("http://mlflow:5000", NAME, lock_url=url, timeout=0.2))
        assert holds(registry_lock("http://mlflow:5000", "another-model", lock_url=url,
                                   timeout=0.2))  # per model
    assert holds(registry_lock("http://mlflow:5000", NAME, lock_url=url, timeout=0.2))


def test_an_http_registry_needs_a_lock_url_and_says_so():
    from recsys.core.errors import ConfigError

    with pytest.raises(ConfigError, match="RECSYS_REGISTRY_LOCK_URL"):
        registry_lock("http://mlflow:5000", NAME)


def test_an_experiment_winner_is_not_promoted_over_a_champion_that_moved(uri):
    from recsys.core.lifecycle.registry import promote_experiment_winner

    v1 = register(uri, NO_CHAMPION)
    lock = registry_lock(uri, NAME)
    promote(client_for(uri), NAME, v1, "first", compared_with=NO_CHAMPION, lock=lock)
    winner, moved_to = register(uri, v1), register(uri, v1)
    promote(client_for(uri), NAME, moved_to, "during the test", compared_with=v1, lock=lock)
    with pytest.raises(StaleComparison, match=f"champion {v1}, but the champion is now "
                                              f"{moved_to}; not promoted"):
        promote_experiment_winner(client_for(uri), NAME, winner, "won", lock=lock,
                                  compared_with=v1, evidence={"experiment.name": "ab"})
    tags = client_for(uri).get_model_version(NAME, winner).tags
    assert aliases(client_for(uri), NAME)["champion"] == moved_to
    assert "experiment.name" not in tags and tags["experiment.stale_comparison"] == (
        f"the experiment ran against champion {v1}, but the champion is now {moved_to}; "
        "not promoted")
    promote_experiment_winner(client_for(uri), NAME, winner, "won", lock=lock,
                              compared_with=moved_to, evidence={"experiment.name": "ab"})
    assert aliases(client_for(uri), NAME)["champion"] == winner
    assert client_for(uri).get_model_version(NAME, winner).tags["experiment.name"] == "ab"


def test_a_failed_registration_racing_another_gate_leaves_that_gates_challenger(uri):
    """Gate A's tag write fails while gate B registers: A's clean-up must not put back the
    challenger A read before B moved it (it used to, outside any lock)."""
    first = register(uri, NO_CHAMPION)  # the first gate's version: challenger
    a_registered, b_done = threading.Event(), threading.Event()
    racer = client_for(uri)
    real_tag = racer.set_model_version_tag

    def tag_then_fail(name, version, key, value):
        if key == "gate.decision":  # A is half-way: let B run, then fail
            a_registered.set()
            assert b_done.wait(timeout=60)
            raise RuntimeError("tracking server went away")
        return real_tag(name, version, key, value)

    racer.set_model_version_tag = tag_then_fail
    failures = queue.Queue()

    def gate_a():
        run = racer.create_run(_experiment(racer))
        try:
            register_with_decision(racer, NAME, f"runs:/{run.info.run_id}/model",
                                   run.info.run_id, Decision(True, ["a"]), {}, {})
        except RuntimeError as exc:
            failures.put(str(exc))

    thread = threading.Thread(target=gate_a)
    thread.start()
    assert a_registered.wait(timeout=60)
    second = register(uri, NO_CHAMPION)  # gate B, complete
    b_done.set()
    thread.join(timeout=60)
    assert failures.get(timeout=1) == "tracking server went away"
    client = client_for(uri)
    assert aliases(client, NAME) == {"challenger": second}
    assert sorted(str(mv.version) for mv in client.search_model_versions(f"name='{NAME}'")) == \
        sorted([first, second])  # A's half-registered version is gone


def test_a_failed_challenger_move_deletes_the_version_and_keeps_the_old_challenger(
        uri, monkeypatch):
    first = register(uri, NO_CHAMPION)
    client = client_for(uri)
    real = client.set_registered_model_alias

    def fail_on_challenger(name, alias, version):
        if alias == "challenger" and version != first:
            raise RuntimeError("registry went away mid-move")
        return real(name, alias, version)

    monkeypatch.setattr(client, "set_registered_model_alias", fail_on_challenger)
    run = client.create_run(_experiment(client))
    with pytest.raises(RuntimeError, match="mid-move"):
        register_with_decision(client, NAME, f"runs:/{run.info.run_id}/model", run.info.run_id,
                               Decision(True, ["test"]), {}, {})
    monkeypatch.undo()
    assert aliases(client, NAME) == {"challenger": first}
    assert [str(mv.version) for mv in client.search_model_versions(f"name='{NAME}'")] == [first]
