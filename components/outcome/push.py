"""Every pipeline run's outcome as Prometheus metrics, pushed to a Pushgateway.

One group per pipeline (`job="recsys-pipelines"`, `pipeline="training"` ...), replaced by
each run's push:
- `recsys_pipeline_run_succeeded` 1/0 and `recsys_pipeline_last_run_timestamp_seconds`;
- `recsys_pipeline_last_success_timestamp_seconds` (kept from the group when a run fails);
- `recsys_pipeline_runs_total{status}` (succeeded, failed): carried over from the group and
  incremented, so a success rate over days needs no per-run series;
- `recsys_pipeline_step_duration_seconds{step}` when the runner timed the steps;
- `recsys_pipeline_gate_outcome{outcome,reason} 1` when the run reached its gate: outcome
  promoted | refused | failed, reason one of REFUSAL_REASONS (low cardinality).
A push that fails is logged, never raised: reporting must not fail a run.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import requests
from prometheus_client import CollectorRegistry, Counter, Gauge, push_to_gateway
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger(__name__)
JOB = "recsys-pipelines"
STATUSES = ("succeeded", "failed")
REFUSAL_REASONS = ("no_improvement", "guardrail", "not_significant", "missing_metric",
                   "other")
_REASON_MARKERS = (("has no value", "missing_metric"),
                   ("below the required", "no_improvement"),
                   ("exceeds the allowed", "guardrail"),
                   ("significance required", "not_significant"),
                   ("not above zero", "not_significant"))


@dataclass(frozen=True)
class GateOutcome:
    outcome: str  # promoted | refused | failed
    reason: str = ""


@dataclass
class RunOutcome:
    pipeline: str  # training | monitoring
    succeeded: bool
    step_seconds: dict[str, float] = field(default_factory=dict)
    gate: GateOutcome | None = None
    finished_at: float = field(default_factory=time.time)


def gate_outcome(decision: dict | None, step_failed: bool = False) -> GateOutcome | None:
    """The gate's outcome from its `outcome` artifact's decision (None: not reached)."""
    if step_failed:
        return GateOutcome("failed")
    if decision is None:
        return None
    if decision.get("promote"):
        return GateOutcome("promoted")
    return GateOutcome("refused", refusal_reason(decision.get("reasons", [])))


def refusal_reason(reasons: list[str]) -> str:
    """The first failing check of the gate's reasons, as one of REFUSAL_REASONS."""
    for text in reasons:
        for marker, reason in _REASON_MARKERS:
            if marker in text:
                return reason
    return "other"


def push_run_outcome(url: str | None, run: RunOutcome, timeout: float = 10.0) -> bool:
    """Push `run` to the Pushgateway at `url`; False when unset or the push failed."""
    if not url:
        return False
    try:
        previous = _previous_values(url, run.pipeline, timeout)
        registry = _registry(run, previous)
        push_to_gateway(url, job=JOB, registry=registry,
                        grouping_key={"pipeline": run.pipeline}, timeout=timeout)
    except (OSError, requests.RequestException) as error:
        log.error("pipeline %s: could not push the run's outcome to %s: %s", run.pipeline, url,
                  error)
        return False
    log.info("pipeline %s: pushed the run's outcome (%s) to %s", run.pipeline,
             "succeeded" if run.succeeded else "failed", url)
    return True


def _previous_values(url: str, pipeline: str, timeout: float) -> dict[tuple, float]:
    """(metric name, status) -> value of this pipeline's group on the Pushgateway now."""
    answer = requests.get(f"{url.rstrip('/')}/metrics", timeout=timeout)
    answer.raise_for_status()
    found = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.labels.get("job") == JOB and sample.labels.get("pipeline") == pipeline:
                found[(sample.name, sample.labels.get("status", ""))] = sample.value
    return found


def _registry(run: RunOutcome, previous: dict[tuple, float]) -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge("recsys_pipeline_run_succeeded", "1 when the pipeline's last run succeeded",
          registry=registry).set(1 if run.succeeded else 0)
    Gauge("recsys_pipeline_last_run_timestamp_seconds", "When the last run finished (epoch s)",
          registry=registry).set(run.finished_at)
    last_success = run.finished_at if run.succeeded else previous.get(
        ("recsys_pipeline_last_success_timestamp_seconds", ""))
    if last_success is not None:
        Gauge("recsys_pipeline_last_success_timestamp_seconds",
              "When the last successful run finished (epoch s)",
              registry=registry).set(last_success)
    runs = Counter("recsys_pipeline_runs", "Runs by status", ["status"], registry=registry)
    for status in STATUSES:
        carried = previous.get(("recsys_pipeline_runs_total", status), 0.0)
        done = 1 if (status == "succeeded") == run.succeeded else 0
        runs.labels(status).inc(carried + done)
    if run.step_seconds:
        steps = Gauge("recsys_pipeline_step_duration_seconds", "Wall time of each step of "
                      "the last run", ["step"], registry=registry)
        for step, seconds in run.step_seconds.items():
            steps.labels(step).set(seconds)
    if run.gate is not None:
        Gauge("recsys_pipeline_gate_outcome", "1 for the last run's gate outcome (promoted, "
              "refused with its reason, failed)", ["outcome", "reason"],
              registry=registry).labels(run.gate.outcome, run.gate.reason).set(1)
    return registry
