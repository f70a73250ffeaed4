"""The gate step: decide on the best candidate and register it with the decision."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import mlflow

from recsys.components.gate.trigger import trigger_tags
from recsys.core.errors import ConfigError
from recsys.core.lifecycle.evaluation import EvaluationRecord
from recsys.core.lifecycle.gate import Decision, GatePolicy, decide
from recsys.core.lifecycle.pyfunc import verify_version
from recsys.core.lifecycle.registry import NO_CHAMPION, decision_payload, register_with_decision
from recsys.core.lifecycle.registry_lock import RegistryLock
from recsys.core.lifecycle.tracking import client_for, use_tracking

log = logging.getLogger(__name__)
BASELINE = "popularity baseline"
RUN_LABEL_TAG = "gate.run_label"


@dataclass
class GateOutcome:
    decision: Decision
    version: str
    candidate: str
    compared_with: str
    """The champion version the candidate was compared with, or NO_CHAMPION."""

    def as_dict(self) -> dict:
        return {"decision": asdict(self.decision), "version": self.version,
                "candidate": self.candidate, "compared_with": self.compared_with}


def run_gate(evaluation: EvaluationRecord, policy: GatePolicy, tracking_uri: str,
             registered_model: str, trigger: str = "",
             lock: RegistryLock | None = None, run_label: str = "") -> GateOutcome:
    """Compare the best candidate with the champion (re-evaluated on this holdout) or, with no
    champion yet, with the popularity baseline; register it as `challenger` (moved under
    `lock` when given) with the decision and with what triggered the run (`trigger`, see
    recsys.components.gate.trigger) and, as `gate.run_label`, the pipeline run's label (how
    `recsys pipeline run` finds its own version among overlapping runs)."""
    if evaluation.primary_metric != policy.primary_metric:
        raise ConfigError(f"the evaluation chose its best candidate by "
                          f"{evaluation.primary_metric}, the gate's policy promotes by "
                          f"{policy.primary_metric}: give both steps the same policy")
    extra_tags = trigger_tags(trigger)
    if run_label:
        extra_tags[RUN_LABEL_TAG] = run_label
    name, best = evaluation.best, evaluation.best_candidate
    if best.model_uri is None or best.run_id is None:
        raise ConfigError(f"the best candidate {name} has no logged model (run_id "
                          f"{best.run_id}, model_uri {best.model_uri}): nothing to register")
    champion = evaluation.champion
    if champion is not None:
        reference, against = champion.metrics, f"champion v{champion.version}"
        compared_with = champion.version
    else:
        reference, against = evaluation.baseline, BASELINE
        compared_with = NO_CHAMPION
    decision = decide(best.metrics, reference, policy, against, evaluation.paired_bootstrap)
    client = client_for(tracking_uri)
    version = register_with_decision(client, registered_model, best.model_uri,
                                     best.run_id, decision, best.metrics, reference,
                                     extra_tags, compared_with, lock,
                                     verify=lambda v: verify_version(registered_model, v))
    use_tracking(tracking_uri)
    payload = {**decision_payload(decision, best.metrics, reference), "candidate": name,
               "version": version, "registered_model": registered_model,
               "evaluation": evaluation.model_dump(mode="json")}
    with mlflow.start_run(run_id=best.run_id):
        mlflow.log_dict(payload, f"gate/decision-v{version}.json")
        mlflow.set_tags({"gate.decision": "approved" if decision.promote else "refused",
                         "gate.version": version})
    log.info("gate: %s v%s %s against %s", name, version,
             "APPROVED" if decision.promote else "refused", against)
    for reason in decision.reasons:
        log.info("gate:   %s", reason)
    return GateOutcome(decision, version, name, compared_with)
