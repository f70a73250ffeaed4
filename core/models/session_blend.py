"""How much a known user's list follows the live session: the blend weight, tuned offline.

Serving ranks a known user's candidates (the long-term model's best `CANDIDATES`, min-max
scaled to [0, 1]) by `blend_scores`: the scaled score plus `weight` x the session
scorer's affinity of each candidate to the live recent items (`session_scoring.py`, in
[0, 1]). `tune_session_blend` picks the weight on the training window's newest sessions of
known users: a session model fitted on the older sessions only scores each case's prefix,
and the weight with the best next-item MRR@20 of the blended list wins (ties: the smaller
weight). The weight is kept on the model (`ATTRIBUTE`), so serving uses what was measured.

Caveat, stated where it is used: the long-term model was fitted on the whole training
window, tuning cases included, so it knows those users' later items; that favours the
long-term side, and the tuned weight errs low rather than high.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.core.data.columns import Columns
from recsys.core.models.base import Hyperparameters, Recommender
from recsys.core.models.session_rules import session_sequences
from recsys.core.models.session_scoring import (
    ATTRIBUTE as SESSION_MODEL_ATTRIBUTE,
)
from recsys.core.models.session_scoring import (
    catalogue_sessions,
    fit_session_model,
    session_affinity,
)
from recsys.core.models.session_zoo import SESSION_MODELS

log = logging.getLogger(__name__)
C = Columns
ATTRIBUTE = "session_blend_weight"
"""The fitted recommender's tuned blend weight (absent: serving's configured default)."""
WEIGHTS = (0.0, 0.1, 0.3, 1.0, 3.0)
CANDIDATES = 100
"""The long-term model's candidates per case, as serving's `candidates` default."""
TUNING_SHARE = 0.1
MAX_CASES = 2000
K = 20
Case = tuple[str, list[str], str]
"""(user, the session's items but the last, the last item: the answer)."""


@dataclass(frozen=True)
class BlendTuning:
    """The chosen weight and each weight's next-item MRR@K on the tuning cases."""

    weight: float | None
    mrr_by_weight: dict[float, float]
    cases: int


def blend_scores(long_term: np.ndarray, affinity: np.ndarray, weight: float) -> np.ndarray:
    """A known user's candidate scores: the long-term scores min-max scaled to [0, 1] (all
    1 when they are equal) plus `weight` x the session affinity."""
    if long_term.size == 0:
        return long_term.astype(np.float64)
    span = long_term.max() - long_term.min()
    scaled = (long_term - long_term.min()) / span if span > 0 else np.ones_like(long_term)
    return scaled + weight * affinity


def blend_weight_of(model: Recommender) -> float | None:
    """The model's tuned blend weight, or None (trained without tuning)."""
    weight = getattr(model, ATTRIBUTE, None)
    return None if weight is None else float(weight)


def known_user_cases(model: Recommender, events: pd.DataFrame, share: float = TUNING_SHARE,
                     max_cases: int = MAX_CASES) -> tuple[pd.DataFrame, list[Case]]:
    """(the older sessions to fit on, [(user, prefix, answer)] of the newest `share` of
    sessions whose user the model knows): each such session of >= 2 items (consecutive
    repeats removed) gives one case, its last item the answer; at most `max_cases`."""
    if C.user_id not in events.columns or events.empty:
        return events, []
    starts = events.groupby(events[C.session_id].astype(str))[C.timestamp].min()
    starts = starts.sort_values(kind="stable")
    cut = int(round(len(starts) * (1 - share)))
    newest = set(starts.index[cut:])
    in_newest = events[C.session_id].astype(str).isin(newest)
    owners = (events.loc[in_newest].dropna(subset=[C.user_id])
              .groupby(events[C.session_id].astype(str))[C.user_id].first().astype(str))
    cases = []
    sequences = session_sequences(events.loc[in_newest])
    for session, items in sequences.groupby(C.session_id, sort=False)[C.item_id]:
        user = owners.get(session)
        items = items.tolist()
        if user in model.user_index and len(items) >= 2 and items[-1] in model.item_index:
            cases.append((user, items[:-1], items[-1]))
        if len(cases) >= max_cases:
            break
    return events.loc[~in_newest], cases


def tune_session_blend(model: Recommender, events: pd.DataFrame, session_model: str,
                       params: Hyperparameters | None = None,
                       weights: Sequence[float] = WEIGHTS) -> BlendTuning:
    """Choose the blend weight for `model` (as module says) and keep it on the model;
    no cases (no known user's session in the newest share): nothing kept, weight None."""
    older, cases = known_user_cases(model, events)
    if not cases or session_model not in SESSION_MODELS or \
            not catalogue_sessions(model, older):
        return BlendTuning(None, {}, len(cases))
    keep = getattr(model, SESSION_MODEL_ATTRIBUTE, None)
    try:
        fit_session_model(model, older, session_model, params)  # the older sessions only
        ranked = []
        for user, prefix, answer in cases:
            items, scores = model.top_items(user, min(CANDIDATES, model.items.size))
            ranked.append((items, scores, session_affinity(model, prefix, items), answer))
    finally:  # the model's own session model back (or none, as before)
        if keep is None:
            delattr(model, SESSION_MODEL_ATTRIBUTE)
        else:
            setattr(model, SESSION_MODEL_ATTRIBUTE, keep)
    mrr = {}
    for weight in weights:
        reciprocal = 0.0
        for items, scores, affinity, answer in ranked:
            blended = blend_scores(scores, affinity, weight)
            order = np.lexsort((items.astype(str), -blended))[:K]
            hits = np.flatnonzero(items[order] == answer)
            reciprocal += 1.0 / (hits[0] + 1) if hits.size else 0.0
        mrr[float(weight)] = reciprocal / len(ranked)
    best = max(mrr, key=lambda w: (mrr[w], -w))
    setattr(model, ATTRIBUTE, best)
    log.info("session blend weight %s (next-item MRR@%d by weight %s over %d cases of known "
             "users)", best, K, {w: round(v, 4) for w, v in mrr.items()}, len(cases))
    return BlendTuning(best, mrr, len(cases))
