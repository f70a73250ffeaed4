"""The evaluate step: every candidate, the popularity baseline and the current champion,
all scored on the same fresh holdout."""
from __future__ import annotations

import logging

import pandas as pd

from recsys.components.evaluate.evaluate import CI_K, KS, Evaluation, evaluate_in_detail
from recsys.components.evaluate.sessions import K as SESSION_K
from recsys.components.evaluate.sessions import next_item_metrics
from recsys.core.lifecycle.evaluation import (
    CandidateResult,
    ChampionResult,
    EvaluationRecord,
    PairedBootstrap,
)
from recsys.core.lifecycle.pyfunc import load_recommender
from recsys.core.lifecycle.registry import CHAMPION, aliases
from recsys.core.lifecycle.tracking import client_for
from recsys.core.models.metrics import paired_bootstrap
from recsys.core.models.new_items import new_item_metrics
from recsys.core.models.popularity import PopularityRecommender

log = logging.getLogger(__name__)


def evaluate_candidates(candidates: dict[str, dict], holdout: pd.DataFrame, train: pd.DataFrame,
                        tracking_uri: str, registered_model: str, primary_metric: str,
                        ks: tuple[int, ...] = KS,
                        holdout_sessions: pd.DataFrame | None = None) -> EvaluationRecord:
    """Score candidates {name: {"model": Recommender, "run_id", "model_uri"}}; returns the
    evaluation record the gate reads (metrics of each, best name, champion, baseline).
    With `holdout_sessions` (the holdout window's events), each candidate's session answers
    and the champion's are also scored by the next-item protocol on the same cases
    (`session_*` metrics), so a session metric can be a gate metric or guardrail."""
    client = client_for(tracking_uri)
    results: dict[str, CandidateResult] = {}
    per_user: dict[str, pd.DataFrame] = {}
    details: dict[str, Evaluation] = {}
    for name, candidate in candidates.items():
        detail = details[name] = evaluate_in_detail(candidate["model"], holdout, ks)
        metrics, per_user[name] = detail.metrics, detail.per_user
        if getattr(candidate["model"], "new_item_ids", None) is not None:
            metrics.update(new_item_metrics(candidate["model"], holdout))
            log.info("evaluate %s new items: %d, hit rate@10 %.4f (random %.4f) over %d users",
                     name, metrics["new_items"], metrics.get("new_item_hit_rate_at_10", 0.0),
                     metrics.get("new_item_hit_rate_at_10_random", 0.0),
                     metrics["new_item_users"])
        if holdout_sessions is not None:
            metrics.update(next_item_metrics(candidate["model"], holdout_sessions))
            log.info("evaluate %s sessions: HitRate@%d %.4f, MRR@%d %.4f over %d cases", name,
                     SESSION_K, metrics[f"session_hit_rate_at_{SESSION_K}"], SESSION_K,
                     metrics[f"session_mrr_at_{SESSION_K}"], metrics["session_cases"])
        if candidate.get("run_id"):
            for key, value in metrics.items():
                client.log_metric(candidate["run_id"], key, value)
        results[name] = CandidateResult(metrics=metrics, run_id=candidate.get("run_id"),
                                        model_uri=candidate.get("model_uri"))
        log.info("evaluate %s: %s=%.4f", name, primary_metric, metrics[primary_metric])
    best = max(results, key=lambda n: (details[n].metrics[primary_metric], n))
    baseline_name = _default_popularity(candidates)
    baseline_detail = details[baseline_name] if baseline_name is not None else \
        evaluate_in_detail(PopularityRecommender().fit(train), holdout, ks)
    reference = baseline_detail
    champion: ChampionResult | None = None
    version = aliases(client, registered_model).get(CHAMPION)
    if version is not None:
        model = load_recommender(f"models:/{registered_model}@{CHAMPION}")
        reference = evaluate_in_detail(model, holdout, ks)
        if holdout_sessions is not None:  # the champion's session answers, same cases
            reference.metrics.update(next_item_metrics(model, holdout_sessions))
            log.info("evaluate champion v%s sessions: HitRate@%d %.4f, MRR@%d %.4f", version,
                     SESSION_K, reference.metrics[f"session_hit_rate_at_{SESSION_K}"],
                     SESSION_K, reference.metrics[f"session_mrr_at_{SESSION_K}"])
        champion = ChampionResult(version=str(version), metrics=reference.metrics)
        log.info("evaluate champion v%s on the same holdout: %s=%.4f", version, primary_metric,
                 reference.metrics[primary_metric])
    paired = paired_difference(per_user[best], reference.per_user, primary_metric)
    if paired:
        log.info("evaluate: %s minus %s, %s per user: %+.4f (95%% CI %+.4f .. %+.4f)", best,
                 "champion" if champion else "baseline", primary_metric, paired.difference,
                 paired.low, paired.high)
    return EvaluationRecord(primary_metric=primary_metric, candidates=results, best=best,
                            baseline=baseline_detail.metrics, champion=champion,
                            paired_bootstrap=paired, holdout_rows=len(holdout),
                            holdout_users=int(holdout["user_id"].nunique()))


def _default_popularity(candidates: dict[str, dict]) -> str | None:
    """The candidate that is exactly the baseline (default popularity fitted on the same
    training data), whose evaluation can stand for the baseline's."""
    default = PopularityRecommender().popularity_half_life_days
    for name, candidate in candidates.items():
        model = candidate["model"]
        if type(model) is PopularityRecommender and \
                model.popularity_half_life_days == default:
            return name
    return None


def paired_difference(candidate: pd.DataFrame, reference: pd.DataFrame, metric: str
                      ) -> PairedBootstrap | None:
    """Paired bootstrap of candidate - reference on the same users, for a `<name>_at_10`
    primary metric (the per-user values are kept at k=10); None for other metrics."""
    name, _, k = metric.rpartition("_at_")
    if k != str(CI_K) or name not in candidate.columns or name not in reference.columns:
        return None
    return PairedBootstrap(metric=metric, **paired_bootstrap(candidate[name], reference[name]))
