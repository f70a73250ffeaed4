"""Every run's outcome is a metric: pushed to a real Pushgateway by the local runner (failed
runs too), and by the exit handler the compiled pipelines carry on a cluster."""
import os

import pandas as pd
import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from recsys.components.gate.report import latest_decision
from recsys.components.outcome.push import (
    GateOutcome,
    RunOutcome,
    gate_outcome,
    push_run_outcome,
    refusal_reason,
)
from recsys.core.data.synthetic.config import ShopConfig
from recsys.core.data.synthetic.generate import generate_shop, write_shop
from recsys.core.settings import DEFAULT_REGISTERED_MODEL
from recsys.pipelines.local_runner import run_training_locally
from recsys.pipelines.monitoring_pipeline import compile_pipeline as compile_monitoring
from recsys.pipelines.outcome_reporting import OUTCOME_CONFIG_MAP
from recsys.pipelines.training_pipeline import compile_pipeline as compile_training
from tests.conftest import free_port


def series(url: str) -> dict[tuple, float]:
    """(name, sorted labels without job/instance) -> value of the recsys pipeline series."""
    found = {}
    for family in text_string_to_metric_families(requests.get(f"{url}/metrics", timeout=5).text):
        for sample in family.samples:
            if sample.name.startswith("recsys_pipeline_"):
                assert sample.labels["job"] == "recsys-pipelines"
                labels = tuple(sorted((k, v) for k, v in sample.labels.items()
                                      if k not in ("job", "instance")))
                found[(sample.name, labels)] = sample.value
    return found


@pytest.mark.parametrize(("reasons", "expected"), [
    (["ndcg_at_10 0.1 vs champion v1 0.1: +0.00% (below the required +1.00%)"],
     "no_improvement"),
    (["ndcg_at_10 0.2 vs champion v1 0.1: +100.00% (meets the required +1.00%)",
      "guardrail coverage_at_10 0.1 vs 0.3: -66.67% (exceeds the allowed -5%)"], "guardrail"),
    (["significance required but no paired bootstrap of ndcg_at_10 against champion v1"],
     "not_significant"),
    (["candidate has no value for ndcg_at_10"], "missing_metric"),
    (["something new"], "other"),
])
def test_a_refusal_keeps_a_low_cardinality_reason(reasons, expected):
    assert refusal_reason(reasons) == expected
    assert gate_outcome({"promote": False, "reasons": reasons}) == GateOutcome("refused",
                                                                               expected)


def test_gate_outcomes():
    assert gate_outcome({"promote": True, "reasons": []}) == GateOutcome("promoted")
    assert gate_outcome(None) is None  # the run never reached its gate
    assert gate_outcome(None, step_failed=True) == GateOutcome("failed")


def test_unset_or_unreachable_pushgateway_pushes_nothing_and_raises_nothing():
    run = RunOutcome(pipeline="training", succeeded=True)
    assert push_run_outcome(None, run) is False
    assert push_run_outcome(f"http://127.0.0.1:{free_port()}", run, timeout=2) is False


@pytest.mark.integration
def test_pushes_carry_the_run_counts_over(pushgateway):
    push_run_outcome(pushgateway, RunOutcome(
        "training", True, {"train-op": 12.5, "gate-op": 3.0},
        GateOutcome("refused", "no_improvement"), finished_at=1000.0))
    push_run_outcome(pushgateway, RunOutcome("training", False, {"extract-op": 1.5},
                                             finished_at=2000.0))
    push_run_outcome(pushgateway, RunOutcome("monitoring", True, finished_at=1500.0))
    found = series(pushgateway)
    training = (("pipeline", "training"),)
    assert found[("recsys_pipeline_run_succeeded", training)] == 0
    assert found[("recsys_pipeline_last_run_timestamp_seconds", training)] == 2000.0
    assert found[("recsys_pipeline_last_success_timestamp_seconds", training)] == 1000.0
    assert found[("recsys_pipeline_runs_total", training + (("status", "succeeded"),))] == 1
    assert found[("recsys_pipeline_runs_total", training + (("status", "failed"),))] == 1
    # the group is replaced: the failed run's steps only, no gate (it was not reached)
    assert found[("recsys_pipeline_step_duration_seconds",
                  training + (("step", "extract-op"),))] == 1.5
    assert not [k for k in found if k[1] == training + (("step", "train-op"),)]
    assert not [k for k in found if k[0] == "recsys_pipeline_gate_outcome"]
    monitoring = (("pipeline", "monitoring"),)
    assert found[("recsys_pipeline_runs_total", monitoring + (("status", "succeeded"),))] == 1


@pytest.mark.integration
@pytest.mark.slow
def test_a_failed_local_run_pushes_its_outcome(tmp_path, pushgateway, monkeypatch):
    monkeypatch.setenv("RECSYS_PUSHGATEWAY_URL", pushgateway)
    with pytest.raises(RuntimeError, match="fingerprint-op"):
        run_training_locally(tmp_path / "kfp", caching=False,
                             source=str(tmp_path / "no-such-file.jsonl"),
                             lake_uri=str(tmp_path / "lake"),
                             tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                             state_dir=str(tmp_path / "state"))
    found = series(pushgateway)
    training = (("pipeline", "training"),)
    assert found[("recsys_pipeline_run_succeeded", training)] == 0
    assert found[("recsys_pipeline_runs_total", training + (("status", "failed"),))] == 1
    assert found[("recsys_pipeline_runs_total", training + (("status", "succeeded"),))] == 0
    timed = {dict(labels)["step"] for name, labels in found
             if name == "recsys_pipeline_step_duration_seconds"}
    assert timed == {"fingerprint-op"}
    # one push per run (the steps ran without the address), and the caller's is kept
    assert os.environ["RECSYS_PUSHGATEWAY_URL"] == pushgateway


@pytest.mark.integration
@pytest.mark.slow
def test_a_local_run_pushes_its_steps_and_the_gates_outcome(tmp_path, pushgateway,
                                                            monkeypatch):
    end = pd.Timestamp.now(tz="UTC").floor("D")
    config = ShopConfig(events=5_000, seed=5, end=end.to_pydatetime())
    source = tmp_path / "shop.jsonl"
    write_shop(generate_shop(config), "jsonl", source, config)
    monkeypatch.setenv("RECSYS_PUSHGATEWAY_URL", pushgateway)
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_training_locally(tmp_path / "kfp", caching=False, source=str(source),
                         lake_uri=str(tmp_path / "lake"), models=["popularity", "item_knn"],
                         tracking_uri=tracking, state_dir=str(tmp_path / "state"))
    found = series(pushgateway)
    training = (("pipeline", "training"),)
    assert found[("recsys_pipeline_run_succeeded", training)] == 1
    assert found[("recsys_pipeline_runs_total", training + (("status", "succeeded"),))] == 1
    assert found[("recsys_pipeline_last_success_timestamp_seconds", training)] == \
        found[("recsys_pipeline_last_run_timestamp_seconds", training)]
    timed = {dict(labels)["step"]: value for (name, labels), value in found.items()
             if name == "recsys_pipeline_step_duration_seconds"}
    steps = {"fingerprint-op", "extract-op", "validate-op", "preprocess-op", "features-op",
             "train-op", "evaluate-op", "gate-op"}
    assert all(seconds > 0 for seconds in timed.values())
    # the gate's outcome is the decision it recorded in the registry
    decision = latest_decision(tracking, DEFAULT_REGISTERED_MODEL)
    [gate] = [{"reason": "", **dict(labels)} for name, labels in found  # "": no label
              if name == "recsys_pipeline_gate_outcome"]
    if decision["promote"]:
        assert gate == {"pipeline": "training", "outcome": "promoted", "reason": ""}
        assert set(timed) == steps | {"promote-op"}
    else:
        assert gate == {"pipeline": "training", "outcome": "refused",
                        "reason": refusal_reason(decision["reasons"])}
        assert set(timed) == steps


@pytest.mark.parametrize("compile_pipeline", [compile_training, compile_monitoring])
def test_the_compiled_pipelines_report_through_an_exit_handler(tmp_path, compile_pipeline):
    spec, platform = yaml.safe_load_all(open(compile_pipeline(str(tmp_path / "p.yaml"))).read())
    root = spec["root"]["dag"]["tasks"]
    reporter = root["report-outcome-op"]
    assert reporter["dependentTasks"] == ["exit-handler-1"]
    assert reporter["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    assert reporter["inputs"]["parameters"]["status"]["taskFinalStatus"]["producerTask"] == \
        "exit-handler-1"
    pipeline = reporter["inputs"]["parameters"]["pipeline"]["runtimeValue"]["constant"]
    assert pipeline == spec["pipelineInfo"]["name"].removeprefix("recsys-")
    executor = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"][
        "exec-report-outcome-op"]
    [config_map] = executor["configMapAsEnv"]
    assert config_map["configMapName"] == OUTCOME_CONFIG_MAP and config_map["optional"] is True
    assert config_map["keyToEnv"] == [{"configMapKey": "pushgateway_url",
                                       "envVar": "RECSYS_PUSHGATEWAY_URL"}]
