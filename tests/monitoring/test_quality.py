"""Served-list quality: Evidently's recsys metrics agree with hand-computed values and with
the pipeline's own ranking metrics."""
import pandas as pd
import pytest

from recsys.core.models.metrics import ranking_metrics
from recsys.monitoring.quality import judged_lists, served_quality

T0 = pd.Timestamp("2026-11-01 12:00", tz="UTC")


def _log(rows):
    return pd.DataFrame([{"timestamp": T0 + pd.Timedelta(minutes=m), "endpoint": endpoint,
                          "user_id": user, "item_ids": items, "fallback": False}
                         for m, endpoint, user, items in rows])


def _events(rows):
    return pd.DataFrame([{"user_id": u, "item_id": i, "timestamp": T0 + pd.Timedelta(minutes=m)}
                         for u, i, m in rows])


LOG = _log([(0, "recommend", "u1", ["a", "b", "c"]),
            (0, "recommend", "u2", ["x", "y", "z"]),
            (0, "recommend", "u3", ["p", "q", "r"]),       # no later interaction: not judged
            (0, "similar", "item9", ["a", "b", "c"])])      # product pages are not judged
EVENTS = _events([("u1", "a", 5), ("u1", "d", 7), ("u2", "y", 3),
                  ("u2", "z", -10),                          # before the list: not relevant
                  ("u3", "p", 60 * 30)])                     # after the horizon


def test_only_later_interactions_within_the_horizon_are_relevant():
    rows = judged_lists(LOG, EVENTS, pd.Timedelta(days=1))
    assert set(rows["user_id"]) == {"u1", "u2"}
    assert rows[rows.target == 1][["user_id", "item_id", "rank"]].values.tolist() == [
        ["u1", "a", 1], ["u1", "d", 4], ["u2", "y", 2]]


def test_evidently_figures_match_hand_computed_values():
    summary, snapshot = served_quality(LOG, EVENTS, k=3)
    assert summary["judged_lists"] == 2
    assert summary["precision_at_3"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert summary["recall_at_3"] == pytest.approx((1 / 2 + 1) / 2)
    ndcg_u1 = 1 / (1 + 1 / 1.5849625)
    ndcg_u2 = 1 / 1.5849625
    assert summary["ndcg_at_3"] == pytest.approx((ndcg_u1 + ndcg_u2) / 2, rel=1e-5)
    assert summary["map_at_3"] == pytest.approx((0.5 + 0.5) / 2)
    assert summary["hit_rate_at_3"] == 1.0
    assert snapshot is not None


def test_agrees_with_the_pipeline_ranking_metrics():
    rows = judged_lists(LOG, EVENTS, pd.Timedelta(days=1))
    served = rows[rows["rank"] <= 3]
    ours = ranking_metrics(served[["user_id", "item_id", "rank"]],
                           rows[rows.target == 1][["user_id", "item_id"]], k=3)
    summary, _ = served_quality(LOG, EVENTS, k=3)
    for name in ("precision", "recall", "ndcg", "map"):
        assert summary[f"{name}_at_3"] == pytest.approx(ours[f"{name}_at_3"], rel=1e-5)


def test_nothing_to_judge_is_said_not_computed():
    summary, snapshot = served_quality(LOG, EVENTS.iloc[:0], k=3)
    assert summary["status"].startswith("not computed") and snapshot is None
