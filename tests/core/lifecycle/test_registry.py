"""Registry moves on a real MLflow store (SQLite in a temp dir)."""
import pytest
from mlflow import MlflowClient

from recsys.core.errors import NotFoundError
from recsys.core.lifecycle.gate import GatePolicy, decide
from recsys.core.lifecycle.registry import (
    NO_CHAMPION,
    StaleComparison,
    aliases,
    promote,
    promote_manually,
    register_with_decision,
    registry_table,
    rollback,
)
from recsys.core.lifecycle.registry_lock import registry_lock

NAME = "recs"
POLICY = GatePolicy(min_relative_improvement=0.01, guardrails={"coverage_at_10": 0.1})


@pytest.fixture
def uri(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def client(uri):
    instance = MlflowClient(tracking_uri=uri, registry_uri=uri)
    instance.test_uri = uri
    return instance


def lock_of(client):
    return registry_lock(client.test_uri, NAME)


def candidate(client, metrics, reference, against="champion"):
    experiment = client.create_experiment(f"candidates-{id(metrics)}-{len(aliases(client, NAME))}")
    run = client.create_run(experiment)
    decision = decide(metrics, reference, POLICY, against)
    compared_with = aliases(client, NAME).get("champion", NO_CHAMPION)
    version = register_with_decision(client, NAME, f"runs:/{run.info.run_id}/model",
                                     run.info.run_id, decision, metrics, reference,
                                     compared_with=compared_with)
    if decision.promote:
        promote(client, NAME, version, "; ".join(decision.reasons), lock=lock_of(client),
                compared_with=compared_with)
    return version, decision


GOOD = {"ndcg_at_10": 0.30, "coverage_at_10": 0.5}
BASE = {"ndcg_at_10": 0.10, "coverage_at_10": 0.5}


def test_first_promotion_then_refusal_keeps_the_champion(client):
    v1, d1 = candidate(client, GOOD, BASE, "popularity baseline")
    assert d1.promote and aliases(client, NAME) == {"champion": v1, "challenger": v1}
    v2, d2 = candidate(client, {"ndcg_at_10": 0.30, "coverage_at_10": 0.5}, GOOD)
    assert not d2.promote
    assert aliases(client, NAME) == {"champion": v1, "challenger": v2}
    tags = client.get_model_version(NAME, v2).tags
    assert tags["gate.decision"] == "refused" and "below the required" in tags["gate.reasons"]


def test_promotion_moves_old_champion_to_previous(client):
    v1, _ = candidate(client, GOOD, BASE)
    v2, d2 = candidate(client, {"ndcg_at_10": 0.40, "coverage_at_10": 0.5}, GOOD)
    assert d2.promote
    assert aliases(client, NAME) == {"champion": v2, "challenger": v2, "previous": v1}
    assert client.get_model_version(NAME, v2).tags["registry.promoted_by"] == "gate"


def test_guardrail_veto(client):
    v1, _ = candidate(client, GOOD, BASE)
    _, decision = candidate(client, {"ndcg_at_10": 0.60, "coverage_at_10": 0.2}, GOOD)
    assert not decision.promote and aliases(client, NAME)["champion"] == v1


def test_rollback_and_manual_promotion_are_recorded(client):
    v1, _ = candidate(client, GOOD, BASE)
    v2, _ = candidate(client, {"ndcg_at_10": 0.40, "coverage_at_10": 0.5}, GOOD)
    assert rollback(client, NAME, "bad CTR", lock=lock_of(client)) == v1
    assert aliases(client, NAME)["champion"] == v1 and aliases(client, NAME)["previous"] == v2
    assert client.get_model_version(NAME, v1).tags["registry.promoted_by"] == "rollback"
    promote_manually(client, NAME, v2, "A/B test won", lock=lock_of(client))
    tags = client.get_model_version(NAME, v2).tags
    assert (tags["registry.promoted_by"], tags["registry.promotion_reason"]) == (
        "manual", "A/B test won")
    table = registry_table(client, NAME)
    assert [r["version"] for r in table] == [v2, v1]
    assert table[0]["aliases"] == ["challenger", "champion"]


def test_a_rollback_from_a_version_no_longer_champion_moves_nothing(client):
    """The deploy step's compare-and-set: a promotion that landed after the failed rollout
    was decided stays champion."""
    v1, _ = candidate(client, GOOD, BASE)
    v2, _ = candidate(client, {"ndcg_at_10": 0.40, "coverage_at_10": 0.5}, GOOD)
    with pytest.raises(StaleComparison, match=f"champion is v{v2}, not v{v1}"):
        rollback(client, NAME, "rollout of v1 failed", lock=lock_of(client), only_from=v1)
    assert aliases(client, NAME)["champion"] == v2 and aliases(client, NAME)["previous"] == v1
    assert rollback(client, NAME, "rollout of v2 failed", lock=lock_of(client),
                    only_from=v2) == v1


def test_rollback_without_previous_is_refused(client):
    candidate(client, GOOD, BASE)
    with pytest.raises(NotFoundError, match="no 'previous' version"):
        rollback(client, NAME, "oops", lock=lock_of(client))


def test_a_failed_registration_leaves_the_registry_as_it_was(client, monkeypatch):
    v1, _ = candidate(client, GOOD, BASE)
    before = aliases(client, NAME)
    versions_before = [r["version"] for r in registry_table(client, NAME)]

    def broken_tag(*args, **kwargs):
        raise RuntimeError("tracking server went away")

    monkeypatch.setattr(client, "set_model_version_tag", broken_tag)
    with pytest.raises(RuntimeError, match="went away"):
        candidate(client, {"ndcg_at_10": 0.9, "coverage_at_10": 0.9}, GOOD)
    monkeypatch.undo()
    assert aliases(client, NAME) == before
    assert [r["version"] for r in registry_table(client, NAME)] == versions_before
