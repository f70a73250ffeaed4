"""What the last gate decided, read back from the MLflow registry, as a short table."""
from __future__ import annotations

import mlflow

from recsys.core.registry import aliases, registry_table
from recsys.core.tracking import client_for, use_tracking

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


def format_outcome(payload: dict, tracking_uri: str, registered_model: str) -> str:
    """Models and key metrics, the decision and why, and the registry's aliases."""
    evaluation = payload["evaluation"]
    rows = [("model", *KEY_METRICS)]
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
    verdict = "PROMOTED to champion" if payload["promote"] else "NOT promoted"
    lines += ["", f"gate: {payload['candidate']} as version {payload['version']} "
                  f"{verdict} (against {payload['against']})"]
    lines += [f"  - {reason}" for reason in payload["reasons"]]
    current = aliases(client_for(tracking_uri), registered_model)
    lines += ["", f"registry {registered_model}: " + ", ".join(
        f"{alias}=v{version}" for alias, version in sorted(current.items()))]
    return "\n".join(lines)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"
