"""Metrics against values computed by hand on tiny frames."""
import math

import pandas as pd
import pytest

from recsys.core.models.metrics import catalogue_coverage, ranking_metrics


def recs(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rank"])


RECS = recs([
    ("a", "x", 1), ("a", "y", 2), ("a", "z", 3),   # a: hits at ranks 1 and 3
    ("b", "x", 1), ("b", "w", 2), ("b", "v", 3),   # b: hit at rank 2
    ("c", "x", 1), ("c", "y", 2), ("c", "z", 3),   # c: nothing relevant held out -> not counted
])
RELEVANT = pd.DataFrame([("a", "x"), ("a", "z"), ("a", "q"), ("b", "w"), ("d", "x")],
                        columns=["user_id", "item_id"])  # d: relevant, never recommended


def test_precision_recall_hit_rate_at_3():
    m = ranking_metrics(RECS, RELEVANT, k=3)
    assert m["precision_at_3"] == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert m["recall_at_3"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert m["hit_rate_at_3"] == pytest.approx(2 / 3)


def test_ndcg_at_3():
    m = ranking_metrics(RECS, RELEVANT, k=3)
    a = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    b = (1 / math.log2(3)) / 1.0
    assert m["ndcg_at_3"] == pytest.approx((a + b + 0) / 3)


def test_map_at_3():
    m = ranking_metrics(RECS, RELEVANT, k=3)
    a = (1 / 1 + 2 / 3) / 3  # hits at 1 and 3, three relevant
    b = (1 / 2) / 1
    assert m["map_at_3"] == pytest.approx((a + b + 0) / 3)


def test_cut_at_k_1():
    m = ranking_metrics(RECS, RELEVANT, k=1)
    assert m["precision_at_1"] == pytest.approx(1 / 3)
    assert m["ndcg_at_1"] == pytest.approx(1 / 3)


def test_coverage():
    assert catalogue_coverage(RECS, catalogue_size=10, k=3) == pytest.approx(5 / 10)
    assert catalogue_coverage(RECS, catalogue_size=10, k=1) == pytest.approx(1 / 10)
