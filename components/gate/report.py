"""What the last gate decided, read back from the MLflow registry, as a short table."""
from __future__ import annotations

from dataclasses import dataclass

import mlflow

from recsys.components.gate.gate import RUN_LABEL_TAG
from recsys.core.errors import NotFoundError
from recsys.core.lifecycle.registry import aliases, registry_table
from recsys.core.lifecycle.tracking import client_for, use_tracking

STALE_TAG = "gate.stale_comparison"
KEY_METRICS = ("ndcg_at_10", "precision_at_10", "recall_at_20", "map_at_10", "coverage_at_10",
               "cold_start_user_share")


def latest_decision(tracking_uri: str, registered_model: str) -> dict | None:
    """The gate payload stored with the newest registered version (None before any run)."""
    rows = registry_table(client_for(tracking_uri), registered_model)
    if not rows:
        return None
    newest = rows[0]
    use_tracking(tracking_uri)
    return mlflow.artifacts.load_dict(
        f"runs:/{newest['run_id']}/gate/decision-v{newest['version']}.json")


PROMOTED, REFUSED, STALE, NOT_PROMOTED = "promoted", "refused", "stale", "not promoted"
"""What became of a run's candidate: champion; refused by the gate; approved, but the
champion moved before promote (compare-and-set); approved, promote did not move it."""
EXIT_CODES = {PROMOTED: 0, REFUSED: 3, STALE: 3, NOT_PROMOTED: 3}
"""`recsys run` / `pipeline run --strict-exit` exit statuses (a failed run: 1 or 2)."""


@dataclass(frozen=True)
class RunResult:
    """One pipeline run's own candidate: its version, what became of it, its gate payload."""

    version: str
    outcome: str
    payload: dict
    stale_reason: str | None = None


def run_result(tracking_uri: str, registered_model: str, run_label: str) -> RunResult:
    """The version the run labelled `run_label` registered (gate tag `gate.run_label`) and its
    outcome, read from that version's own tags; never another run's newer version."""
    client = client_for(tracking_uri)
    found = client.search_model_versions(
        f"name = '{registered_model}' and tags.`{RUN_LABEL_TAG}` = '{run_label}'")
    if len(found) != 1:
        raise NotFoundError(f"expected one version of {registered_model} registered by run "
                            f"{run_label}, found {len(found)}")
    version, tags = str(found[0].version), found[0].tags or {}
    if STALE_TAG in tags:
        outcome = STALE
    elif tags.get("gate.decision") != "approved":
        outcome = REFUSED
    elif "registry.promoted_by" in tags:
        outcome = PROMOTED
    else:
        outcome = NOT_PROMOTED
    use_tracking(tracking_uri)
    payload = mlflow.artifacts.load_dict(
        f"runs:/{found[0].run_id}/gate/decision-v{version}.json")
    return RunResult(version, outcome, payload, tags.get(STALE_TAG))


def format_outcome(payload: dict, tracking_uri: str, registered_model: str,
                   run: RunResult | None = None) -> str:
    """Models and key metrics, the decision and why (with `run`, what became of the run's
    own candidate after the gate), and the registry's aliases."""
    evaluation = payload["evaluation"]
    rows: list[tuple[str, ...]] = [("model", *KEY_METRICS)]
    for name, result in evaluation["candidates"].items():
        mark = " (best)" if name == evaluation["best"] else ""
        rows.append((name + mark, *(_fmt(result["metrics"].get(k)) for k in KEY_METRICS)))
    rows.append(("popularity baseline", *(_fmt(evaluation["baseline"].get(k))
                                          for k in KEY_METRICS)))
    champion = evaluation.get("champion")
    if champion:
        rows.append((f"champion v{champion['version']} (re-evaluated)",
                     *(_fmt(champion["metrics"].get(k)) for k in KEY_METRICS)))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths)) for r in rows]
    outcome = run.outcome if run else PROMOTED if payload["promote"] else REFUSED
    verdict = {PROMOTED: "PROMOTED to champion", REFUSED: "NOT promoted",
               STALE: "approved by the gate but NOT promoted: the champion moved meanwhile",
               NOT_PROMOTED: "approved by the gate but NOT promoted"}[outcome]
    lines += ["", f"gate: {payload['candidate']} as version {payload['version']} "
                  f"{verdict} (against {payload['against']})"]
    lines += [f"  - {reason}" for reason in payload["reasons"]]
    if run and run.stale_reason:
        lines += [f"  - {run.stale_reason}"]
    current = aliases(client_for(tracking_uri), registered_model)
    lines += ["", f"registry {registered_model}: " + ", ".join(
        f"{alias}=v{version}" for alias, version in sorted(current.items()))]
    return "\n".join(lines)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"
