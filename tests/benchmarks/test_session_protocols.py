"""The session protocols' metrics on hand-computed cases, and SASRec's split."""
import math

import numpy as np
import pytest

from recsys.benchmarks.session_protocols import (
    evenly,
    leave_one_out,
    leave_one_out_metrics,
    next_item_metrics,
    session_cases,
    target_ranks,
)


def test_ranks_count_ties_ahead_of_the_target():
    scores = np.array([[-np.inf, 0.9, 0.5, 0.5, 0.1],
                       [-np.inf, 0.9, 0.5, 0.5, 0.1],
                       [-np.inf, 0.0, 0.0, 0.0, 0.0]])
    assert target_ranks(scores, np.array([1, 2, 4])).tolist() == [1, 3, 4]


def test_next_item_metrics_by_hand():
    # ranks 1, 4, 15 and 30 of four cases
    metrics = next_item_metrics(np.array([1, 4, 15, 30]))
    assert metrics["precision_at_10"] == pytest.approx(2 / 4)
    assert metrics["mrr_at_10"] == pytest.approx((1 + 1 / 4) / 4)
    assert metrics["precision_at_20"] == pytest.approx(3 / 4)
    assert metrics["mrr_at_20"] == pytest.approx((1 + 1 / 4 + 1 / 15) / 4)


def test_leave_one_out_metrics_by_hand():
    metrics = leave_one_out_metrics(np.array([1, 3, 12, 21]))
    assert metrics["hit_at_10"] == pytest.approx(2 / 4)
    assert metrics["hit_at_20"] == pytest.approx(3 / 4)
    assert metrics["ndcg_at_10"] == pytest.approx((1 + 1 / math.log2(4)) / 4)
    assert metrics["ndcg_at_20"] == pytest.approx((1 + 0.5 + 1 / math.log2(13)) / 4)


def test_every_prefix_is_a_case_and_evenly_is_deterministic():
    prefixes, targets = session_cases([[1, 2, 3], [4], [5, 5]])
    assert prefixes == [[1], [1, 2], [5]] and targets == [2, 3, 5]
    assert evenly((prefixes, targets), 2) == ([[1], [5]], [2, 5])


def test_leave_one_out_splits_as_sasrec():
    split = leave_one_out({1: [1, 2, 3, 4], 2: [5, 6]})
    assert split.train == [[1, 2], [5, 6]]
    assert split.valid_prefixes == [[1, 2]] and split.valid_targets == [3]
    assert split.test_prefixes == [[1, 2, 3]] and split.test_targets == [4]
