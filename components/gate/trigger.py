"""Why a training run happened, carried to the registry version it produces.

The monitoring pipeline hands the training pipeline a JSON `trigger` naming the drift report
that started it; the gate stores it as `retrain.*` tags on the version it registers, so the
registry links each version to the decision (gate.* tags) and to the report behind the run.
An empty trigger means a scheduled or manual run.
"""
from __future__ import annotations

import json

from recsys.core.errors import ConfigError

TRIGGER_FIELDS = ("report_url", "monitoring_run_id", "drifted_share", "top_drifted_columns")


def drift_trigger(summary: dict) -> str:
    """The trigger text for a retraining started by the drift summary of `monitor()`."""
    return json.dumps({"reason": "drift", **{field: summary.get(field)
                                              for field in TRIGGER_FIELDS}}, default=str)


def trigger_tags(trigger: str) -> dict[str, str]:
    if not trigger.strip():
        return {"retrain.trigger": "schedule or manual"}
    try:
        record = json.loads(trigger)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"trigger must be a JSON object from the monitoring step, got "
                          f"{trigger[:80]!r}: {exc}") from exc
    if not isinstance(record, dict) or "reason" not in record:
        raise ConfigError(f"trigger must be a JSON object with a 'reason', got {trigger[:80]!r}")
    tags = {"retrain.trigger": str(record["reason"])}
    for field in TRIGGER_FIELDS:
        value = record.get(field)
        if value is not None:
            tags[f"retrain.{field}"] = ",".join(value) if isinstance(value, list) else str(value)
    return tags
