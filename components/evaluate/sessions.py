"""The session protocol: next-item HitRate@k and MRR@k on held-out sessions.

The standard protocol of session-based recommendation (Hidasi et al. 2016; Ludewig &
Jannach 2018): sessions are split by time (the newest share, or those after the pipeline's
split time, are the test); a test session of n >= 2 items (consecutive repeats removed)
gives one case: its first n-1 items are the live session, its last item the answer.
Answers the training sessions never saw cannot be predicted by any model and are left out
(counted), as in the published setups. HitRate@k: the share of cases whose answer is in the
top k; MRR@k: the mean of 1/rank (0 beyond k).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.core.data.columns import Columns
from recsys.core.data.processed import Processed
from recsys.core.errors import DataQualityError
from recsys.core.models.session_rules import session_sequences
from recsys.core.models.session_scoring import session_top

C = Columns
K = 20
MAX_CASES = 20_000
"""Cases scored at most (a seeded sample beyond): ~0.3 ms each."""


def split_sessions_by_time(events: pd.DataFrame, test_share: float = 0.2
                           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test) events: whole sessions, ordered by their first event; the newest
    `test_share` of sessions are the test."""
    if not 0 < test_share < 1:
        raise DataQualityError(f"test_share must be in (0, 1), got {test_share}")
    starts = events.groupby(events[C.session_id].astype(str))[C.timestamp].min()
    starts = starts.sort_values(kind="stable")
    cut = int(round(len(starts) * (1 - test_share)))
    test_ids = set(starts.index[cut:])
    in_test = events[C.session_id].astype(str).isin(test_ids)
    return events[~in_test], events[in_test]


def next_item_cases(test_events: pd.DataFrame, known_items) -> tuple[list[tuple], dict]:
    """[(session prefix, answer)] and the counts of what was left out."""
    sequences = session_sequences(test_events)
    known = set(map(str, known_items))
    cases, unknown_answer, too_short = [], 0, 0
    for _, items in sequences.groupby(C.session_id, sort=False)[C.item_id]:
        items = items.tolist()
        if len(items) < 2:
            too_short += 1
        elif items[-1] not in known:
            unknown_answer += 1
        else:
            cases.append((items[:-1], items[-1]))
    return cases, {"sessions_too_short": too_short, "answers_unseen_in_training": unknown_answer}


def next_item_metrics(model, test_events: pd.DataFrame, k: int = K,
                      max_cases: int = MAX_CASES, seed: int = 0) -> dict:
    """HitRate@k and MRR@k of the model's session answers (`session_top`, the serving
    ranking: its session model, else its session rules) on the test sessions, with the
    case counts."""
    cases, left_out = next_item_cases(test_events, model.items)
    sampled = len(cases) > max_cases
    if sampled:
        chosen = np.random.default_rng(seed).choice(len(cases), max_cases, replace=False)
        cases = [cases[i] for i in np.sort(chosen)]
    hits, reciprocal = 0, 0.0
    for prefix, answer in cases:
        ranked = session_top(model, prefix, k)
        if answer in ranked:
            hits += 1
            reciprocal += 1.0 / (ranked.index(answer) + 1)
    n = len(cases)
    return {f"session_hit_rate_at_{k}": hits / n if n else 0.0,
            f"session_mrr_at_{k}": reciprocal / n if n else 0.0,
            "session_cases": float(n), "session_cases_sampled": float(sampled),
            **{f"session_{key}": float(value) for key, value in left_out.items()}}


def holdout_events(processed: Processed) -> pd.DataFrame:
    """The processed window's events from the split time on: the pipeline's test sessions."""
    return processed.session_events(after_split=True)
