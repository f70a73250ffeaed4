"""The gate and promote component bodies (`.python_func`) on a real MLflow store."""
import json

import pandas as pd

from recsys.components.gate.component import gate_op, promote_op
from recsys.core.lifecycle.evaluation import EvaluationRecord
from recsys.core.lifecycle.gate import DEFAULT_POLICY
from recsys.core.lifecycle.registry import aliases
from recsys.core.lifecycle.tracking import client_for
from tests.factories import logged_model
from tests.serving.conftest import ROWS

NAME = "recs"


class Artifact:
    def __init__(self, path):
        self.path = str(path)


def evaluation_record(fitted, metrics, baseline, champion=None) -> dict:
    """The evaluate step's artifact (as JSON) for one candidate."""
    return EvaluationRecord(
        primary_metric="ndcg_at_10", best="item_knn", baseline=baseline, champion=champion,
        candidates={"item_knn": {"metrics": metrics, "model_uri": fitted.model_uri,
                                 "run_id": fitted.run_id}},
        holdout_rows=10, holdout_users=3).model_dump(mode="json")


def run_gate_body(tmp_path, uri, record, name, run_label="", **policy):
    """The gate step's body with the default policy, or with its fields in `policy`."""
    evaluation = tmp_path / f"{name}.json"
    evaluation.write_text(json.dumps(record))
    outcome = Artifact(tmp_path / f"{name}-outcome.json")
    approved = gate_op.python_func(evaluation=Artifact(evaluation), tracking_uri=uri,
                                   registered_model=NAME, outcome=outcome, trigger="",
                                   policy={**DEFAULT_POLICY.model_dump(), **policy},
                                   run_label=run_label)
    return approved, outcome


def test_gate_body_decides_by_the_policy_it_is_given_and_promote_moves_the_alias(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    fitted = logged_model(uri, "gate-body", frame)
    baseline = {"ndcg_at_10": 0.10, "coverage_at_10": 0.50, "recall_at_20": 0.20,
                "session_mrr_at_20": 0.30}
    better = {"ndcg_at_10": 0.20, "coverage_at_10": 0.42, "recall_at_20": 0.20,
              "session_mrr_at_20": 0.30}  # coverage -16%

    approved, outcome = run_gate_body(tmp_path, uri, evaluation_record(fitted, better, baseline),
                                      "strict")
    assert approved is False  # the -10% coverage guardrail vetoes
    refused = json.loads(open(outcome.path).read())
    assert refused["version"] == "1" and not refused["decision"]["promote"]
    assert any("coverage_at_10" in r for r in refused["decision"]["reasons"])

    approved, outcome = run_gate_body(tmp_path, uri, evaluation_record(fitted, better, baseline),
                                      "lenient", guardrails={"coverage_at_10": 0.20})
    assert approved is True
    assert promote_op.python_func(outcome=outcome, tracking_uri=uri, registered_model=NAME,
                                  registry_lock_url="") is True
    assert aliases(client_for(uri), NAME) == {"challenger": "2", "champion": "2"}

    approved, _ = run_gate_body(tmp_path, uri, evaluation_record(
        fitted, better, baseline, champion={"version": "2", "metrics": better}), "same",
        guardrails={"coverage_at_10": 0.20})
    assert approved is False  # no gain over the champion: nothing moves
    assert aliases(client_for(uri), NAME)["champion"] == "2"
    assert json.loads(open(outcome.path).read())["compared_with"] == "none"  # v1, v2 vs base


def test_promote_body_refuses_a_comparison_the_champion_has_moved_past(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    fitted = logged_model(uri, "gate-body", frame)
    baseline = {"ndcg_at_10": 0.10, "coverage_at_10": 0.50, "recall_at_20": 0.20,
                "session_mrr_at_20": 0.30}
    better = {"ndcg_at_10": 0.20, "coverage_at_10": 0.50, "recall_at_20": 0.20,
              "session_mrr_at_20": 0.30}
    # two runs both gated against "no champion yet" ...
    _, first = run_gate_body(tmp_path, uri, evaluation_record(fitted, better, baseline), "a")
    _, second = run_gate_body(tmp_path, uri, evaluation_record(fitted, better, baseline), "b")
    assert promote_op.python_func(outcome=first, tracking_uri=uri, registered_model=NAME,
                                  registry_lock_url="") is True
    # ... the later one finds v1 promoted meanwhile and moves nothing
    assert promote_op.python_func(outcome=second, tracking_uri=uri, registered_model=NAME,
                                  registry_lock_url="") is False
    client = client_for(uri)
    assert aliases(client, NAME) == {"champion": "1", "challenger": "2"}
    tags = client.get_model_version(NAME, "2").tags
    assert tags["gate.compared_with_version"] == "none"
    assert tags["gate.stale_comparison"].startswith("gate compared with none, but the "
                                                    "champion is now 1")


def delete_model_files(uri, fitted) -> None:
    """What an artifact store that lost a run's files looks like: the logged model's
    artifacts are gone, its registry entries are not."""
    import shutil
    from pathlib import Path
    from urllib.parse import urlparse

    model_id = fitted.model_uri.removeprefix("models:/")
    location = client_for(uri).get_logged_model(model_id).artifact_location
    shutil.rmtree(Path(urlparse(location).path))


def test_a_candidate_whose_model_files_are_gone_is_refused_and_nothing_moves(tmp_path):
    import pytest

    from recsys.core.models.storage import ModelIntegrityError

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    baseline = {"ndcg_at_10": 0.10, "coverage_at_10": 0.50, "recall_at_20": 0.20,
                "session_mrr_at_20": 0.30}
    better = {"ndcg_at_10": 0.20, "coverage_at_10": 0.50, "recall_at_20": 0.20,
              "session_mrr_at_20": 0.30}
    champion = logged_model(uri, "gate-body", frame)
    _, first = run_gate_body(tmp_path, uri, evaluation_record(champion, better, baseline), "a")
    assert promote_op.python_func(outcome=first, tracking_uri=uri, registered_model=NAME,
                                  registry_lock_url="") is True
    best = {"ndcg_at_10": 0.40, "coverage_at_10": 0.50, "recall_at_20": 0.20}
    lost = logged_model(uri, "gate-body", frame)
    delete_model_files(uri, lost)  # between train and gate
    with pytest.raises(ModelIntegrityError, match="v2 cannot be loaded, so no alias moves"):
        run_gate_body(tmp_path, uri, evaluation_record(
            lost, best, baseline, champion={"version": "1", "metrics": better}), "lost")
    client = client_for(uri)
    assert aliases(client, NAME) == {"champion": "1", "challenger": "1"}
    tags = client.get_model_version(NAME, "2").tags
    assert tags["gate.decision"] == "refused"
    assert "holds no model.json" in tags["registry.unloadable"]


def test_promote_refuses_a_version_whose_model_files_went_missing_after_the_gate(tmp_path):
    import pytest

    from recsys.core.models.storage import ModelIntegrityError

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    baseline = {"ndcg_at_10": 0.10, "coverage_at_10": 0.50, "recall_at_20": 0.20,
                "session_mrr_at_20": 0.30}
    better = {"ndcg_at_10": 0.20, "coverage_at_10": 0.50, "recall_at_20": 0.20,
              "session_mrr_at_20": 0.30}
    fitted = logged_model(uri, "gate-body", frame)
    approved, outcome = run_gate_body(tmp_path, uri, evaluation_record(fitted, better, baseline),
                                      "approved")
    assert approved is True
    delete_model_files(uri, fitted)  # between gate and promote
    with pytest.raises(ModelIntegrityError, match="v1 cannot be loaded, so no alias moves"):
        promote_op.python_func(outcome=outcome, tracking_uri=uri, registered_model=NAME,
                               registry_lock_url="")
    client = client_for(uri)
    assert aliases(client, NAME) == {"challenger": "1"}  # no champion: nothing was promoted
    assert "holds no model.json" in client.get_model_version(NAME, "1").tags[
        "registry.unloadable"]


def test_the_gate_refuses_a_malformed_artifact_or_another_primary_metric_before_registering(
        tmp_path):
    import pytest
    from pydantic import ValidationError

    from recsys.core.errors import ConfigError

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    fitted = logged_model(uri, "gate-body", frame)
    baseline = {"ndcg_at_10": 0.10, "coverage_at_10": 0.50, "recall_at_20": 0.20}
    record = evaluation_record(fitted, baseline, baseline)
    with pytest.raises(ValidationError, match="candidates.item_knn.metrics.ndcg_at_10"):
        run_gate_body(tmp_path, uri, {**record, "candidates": {"item_knn": {
            **record["candidates"]["item_knn"], "metrics": {"ndcg_at_10": "0.2x"}}}}, "bad")
    with pytest.raises(ConfigError, match="chose its best candidate by ndcg_at_10, the gate's "
                                          "policy promotes by recall_at_20"):
        run_gate_body(tmp_path, uri, record, "other", primary_metric="recall_at_20")
    assert client_for(uri).search_model_versions(f"name='{NAME}'") == []
