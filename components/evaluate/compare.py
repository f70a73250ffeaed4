"""The evaluate step: every candidate, the popularity baseline and the current champion,
all scored on the same fresh holdout."""
from __future__ import annotations

import logging

import pandas as pd

from components.common.tracking import client_for
from components.evaluate.evaluate import KS, evaluate_model
from components.gate.registry import CHAMPION, aliases
from components.models.popularity import PopularityRecommender
from components.train.pyfunc import load_recommender

log = logging.getLogger(__name__)


def evaluate_candidates(candidates: dict[str, dict], holdout: pd.DataFrame, train: pd.DataFrame,
                        tracking_uri: str, registered_model: str, primary_metric: str,
                        ks: tuple[int, ...] = KS) -> dict:
    """Score candidates {name: {"model": Recommender, "run_id", "model_uri"}}; returns the
    evaluation record the gate reads (metrics of each, best name, champion, baseline)."""
    client = client_for(tracking_uri)
    results = {}
    for name, candidate in candidates.items():
        metrics = evaluate_model(candidate["model"], holdout, ks)
        if candidate.get("run_id"):
            for key, value in metrics.items():
                client.log_metric(candidate["run_id"], key, value)
        results[name] = {"metrics": metrics, "run_id": candidate.get("run_id"),
                         "model_uri": candidate.get("model_uri")}
        log.info("evaluate %s: %s=%.4f", name, primary_metric, metrics[primary_metric])
    best = max(results, key=lambda n: (results[n]["metrics"][primary_metric], n))
    baseline = evaluate_model(PopularityRecommender().fit(train), holdout, ks)
    champion = None
    version = aliases(client, registered_model).get(CHAMPION)
    if version is not None:
        model = load_recommender(f"models:/{registered_model}@{CHAMPION}")
        champion = {"version": version, "metrics": evaluate_model(model, holdout, ks)}
        log.info("evaluate champion v%s on the same holdout: %s=%.4f", version, primary_metric,
                 champion["metrics"][primary_metric])
    return {"primary_metric": primary_metric, "candidates": results, "best": best,
            "baseline": baseline, "champion": champion, "holdout_rows": len(holdout),
            "holdout_users": int(holdout["user_id"].nunique())}
