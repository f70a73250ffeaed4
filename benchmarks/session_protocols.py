"""The session-based literature's two protocols, on int item ids (1..n; 0 is padding).

- next-item (SR-GNN, NARM, STAMP, GCE-GNN): every test case is a prefix and its next item;
  the model ranks ALL items; P@k = share of cases whose next item is in the top k (the
  literature's "precision" is this hit rate), MRR@k = mean of 1/rank when rank <= k, else 0.
- leave-one-out (SASRec): a user's last item is the test, the one before it the
  validation; the input is every earlier item. Ranked against ALL items, excluding nothing
  but padding (not SASRec's 100 sampled negatives, and items the user already had are
  ranked too); HIT@k = share of users whose item is in the top k, NDCG@k = 1/log2(rank + 1)
  when rank <= k, else 0.

Ranks are pessimistic about ties: an item scoring the same as the target counts as ahead of
it, so a model cannot gain from giving many items one score.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

KS = (10, 20)
BATCH = 256


def target_ranks(scores: np.ndarray, targets: Sequence[int] | np.ndarray) -> np.ndarray:
    """1-based rank of each row's target among all columns (ties counted ahead)."""
    targets = np.asarray(targets, dtype=np.int64)
    own = scores[np.arange(scores.shape[0]), targets][:, None]
    ahead = (scores > own).sum(axis=1) + (scores == own).sum(axis=1) - 1
    return ahead + 1


def next_item_metrics(ranks: np.ndarray, ks=KS) -> dict[str, float]:
    ranks = np.asarray(ranks, dtype=np.float64)
    out = {}
    for k in ks:
        hit = ranks <= k
        out[f"precision_at_{k}"] = float(hit.mean()) if ranks.size else 0.0
        out[f"mrr_at_{k}"] = float(np.where(hit, 1.0 / ranks, 0.0).mean()) if ranks.size \
            else 0.0
    return out


def leave_one_out_metrics(ranks: np.ndarray, ks=KS) -> dict[str, float]:
    ranks = np.asarray(ranks, dtype=np.float64)
    out = {}
    for k in ks:
        hit = ranks <= k
        out[f"hit_at_{k}"] = float(hit.mean()) if ranks.size else 0.0
        out[f"ndcg_at_{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 1), 0.0).mean()) \
            if ranks.size else 0.0
    return out


def rank_cases(model, prefixes: list[list[int]], targets: list[int]) -> tuple[np.ndarray,
                                                                              float]:
    """(rank of every case's target, seconds spent scoring), in batches of `BATCH`."""
    ranks, seconds = [], 0.0
    for start in range(0, len(prefixes), BATCH):
        began = time.perf_counter()
        scores = model.score(prefixes[start:start + BATCH])
        seconds += time.perf_counter() - began
        ranks.append(target_ranks(scores, targets[start:start + BATCH]))
    return (np.concatenate(ranks) if ranks else np.zeros(0, dtype=np.int64)), seconds


def session_cases(sessions: list[list[int]]) -> tuple[list[list[int]], list[int]]:
    """Every prefix of every session (length >= 1) with its next item."""
    prefixes, targets = [], []
    for session in sessions:
        for end in range(1, len(session)):
            prefixes.append(session[:end])
            targets.append(session[end])
    return prefixes, targets


def evenly(cases: tuple[list, list], limit: int | None) -> tuple[list, list]:
    """At most `limit` cases, taken at even steps (deterministic)."""
    prefixes, targets = cases
    if limit is None or len(prefixes) <= limit:
        return prefixes, targets
    chosen = np.linspace(0, len(prefixes) - 1, limit).astype(int)
    return [prefixes[i] for i in chosen], [targets[i] for i in chosen]


@dataclass
class LeaveOneOut:
    """SASRec's split: users with fewer than 3 items train only."""

    train: list[list[int]]
    valid_prefixes: list[list[int]]
    valid_targets: list[int]
    test_prefixes: list[list[int]]
    test_targets: list[int]


def leave_one_out(users: dict[int, list[int]]) -> LeaveOneOut:
    split = LeaveOneOut([], [], [], [], [])
    for items in users.values():
        if len(items) < 3:
            split.train.append(list(items))
            continue
        split.train.append(items[:-2])
        split.valid_prefixes.append(items[:-2])
        split.valid_targets.append(items[-2])
        split.test_prefixes.append(items[:-1])
        split.test_targets.append(items[-1])
    return split


def judge(model, prefixes, targets, kind: str) -> dict[str, float]:
    """The protocol's metrics of a fitted model on the cases, with scoring time."""
    ranks, seconds = rank_cases(model, prefixes, targets)
    metrics = next_item_metrics(ranks) if kind == "next-item" else leave_one_out_metrics(ranks)
    return {**metrics, "cases": len(targets),
            "ms_per_prediction": 1000 * seconds / max(len(targets), 1)}
