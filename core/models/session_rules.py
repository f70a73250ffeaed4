"""Session-based recommendations: sequential rules learned from browsing sessions.

For anonymous and new visitors the only signal is the live session (the items just viewed).
The rules are the "SR" model of Ludewig & Jannach (Evaluation of session-based
recommendation algorithms, 2018), one of the session baselines that neural models rarely
beat: within a session (items in time order, consecutive repeats removed), every item `a`
followed `d` steps later (d <= `window`) by `b` adds 1/d to the rule a -> b. Each item
keeps its `max_rules` strongest successors (a bounded, sparse items x items matrix stored
with the model as plain arrays).

A session is scored from its last `max_recent` items, the newest weighing most (weight
1 / age, age 1 for the newest): score(b) = sum over recent a of weight(a) * rule(a -> b),
scaled to [0, 1], plus `popularity_weight` x the model's normalised popularity, which
orders what the rules do not reach and breaks their ties. A recommender that carries a
next-item session model answers sessions with it instead (`session_scoring.py`, which
serving and the offline next-item protocol both call).
"""
from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TypedDict

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from recsys.core.data.columns import Columns
from recsys.core.errors import ConfigError, missing_columns_error
from recsys.core.models.base import Recommender

C = Columns
ATTRIBUTE = "session_rules"
"""The fitted model's attribute holding the rules (None when it has none)."""
WINDOW = 5
MAX_RULES = 100
MAX_RECENT = 10
POPULARITY_WEIGHT = 0.05
POPULAR_CANDIDATES = 200
CACHE = "_derived_session_popularity"
"""Popular items added to the rules' candidates, so that a thin session still fills a list."""


class RulesScoring(TypedDict, total=False):
    """`session_candidates`' options, as callers pass them on."""

    max_recent: int
    popularity_weight: float
    popular: int


def session_sequences(events: pd.DataFrame) -> pd.DataFrame:
    """(session_id, item_id, position): each session's items in time order, consecutive
    repeats of one item removed (a reload is not a new step); itemless events dropped."""
    missing = [c for c in (C.session_id, C.item_id, C.timestamp) if c not in events.columns]
    if missing:
        raise missing_columns_error("session rules", missing, events.columns)
    frame = events.loc[events[C.item_id].notna() & events[C.session_id].notna(),
                       [C.session_id, C.item_id, C.timestamp]]
    frame = frame.astype({C.session_id: str, C.item_id: str})
    frame = frame[frame[C.item_id].ne("") & frame[C.session_id].ne("")]
    frame = frame.sort_values([C.session_id, C.timestamp], kind="stable")
    same_session = frame[C.session_id].eq(frame[C.session_id].shift())
    repeat = same_session & frame[C.item_id].eq(frame[C.item_id].shift())
    frame = frame[~repeat]
    position = frame.groupby(C.session_id, sort=False).cumcount()
    return pd.DataFrame({C.session_id: frame[C.session_id].to_numpy(),
                         C.item_id: frame[C.item_id].to_numpy(),
                         "position": position.to_numpy()})


def fit_session_rules(model: Recommender, events: pd.DataFrame, window: int = WINDOW,
                      max_rules: int = MAX_RULES) -> sp.csr_matrix:
    """Learn the rules over the fitted `model`'s catalogue from `events` (session_id,
    item_id, timestamp) and keep them on the model (`ATTRIBUTE`); items outside the
    catalogue are skipped. Returns the rules."""
    if window < 1 or max_rules < 1:
        raise ConfigError(f"session rules need window >= 1 and max_rules >= 1, got {window}, "
                          f"{max_rules}")
    model._check_fitted()
    sequences = session_sequences(events)
    codes = pd.Index(model.items).get_indexer(sequences[C.item_id])
    session_codes = pd.factorize(sequences[C.session_id])[0]
    position = sequences["position"].to_numpy()
    rows, cols, weights = [], [], []
    for step in range(1, window + 1):
        later = np.arange(step, len(codes))
        earlier = later - step
        pair = (session_codes[later] == session_codes[earlier]) & (codes[later] >= 0) & \
            (codes[earlier] >= 0) & (codes[later] != codes[earlier]) & \
            (position[later] - position[earlier] == step)
        rows.append(codes[earlier][pair])
        cols.append(codes[later][pair])
        weights.append(np.full(pair.sum(), 1.0 / step, dtype=np.float32))
    n = model.items.size
    rules = sp.coo_matrix((np.concatenate(weights), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(n, n)).tocsr()
    rules.sum_duplicates()
    rules = _strongest_per_row(rules, max_rules)
    setattr(model, ATTRIBUTE, rules)
    return rules


def rules_of(model: Recommender) -> sp.csr_matrix | None:
    """The model's session rules, or None (a model trained before they existed, or without
    sessions)."""
    return getattr(model, ATTRIBUTE, None)


def session_candidates(model: Recommender, recent_items: Sequence[object],
                       max_recent: int = MAX_RECENT,
                       popularity_weight: float = POPULARITY_WEIGHT,
                       popular: int = POPULAR_CANDIDATES
                       ) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.float64]]:
    """(items, scores) for a session whose items are `recent_items` (oldest first): every
    item the rules reach from the session plus the `popular` most popular items, scored as
    the module says. Empty when the model has no rules or knows none of the items."""
    empty = np.array([], dtype=object), np.array([], dtype=np.float64)
    reached = _rule_scores(model, recent_items, max_recent)
    if reached is None:
        return empty
    reached_cols, reached_scores = reached
    popularity, top_popular = popularity_view(model, popular)
    columns = np.union1d(reached_cols, top_popular)
    scores = popularity_weight * popularity[columns]
    scores[np.searchsorted(columns, reached_cols)] += reached_scores
    if not getattr(model, "scores_cold_items", False) and model.cold_items is not None:
        keep = ~model.cold_items[columns]
        columns, scores = columns[keep], scores[keep]
    return model.items[columns], scores


def session_affinity(model: Recommender, recent_items: Sequence[object],
                     items: Collection[object], max_recent: int = MAX_RECENT
                     ) -> npt.NDArray[np.float64]:
    """How strongly each of `items` follows the session, in [0, 1] (the re-rank signal for
    known users): the rules' scores, or without rules the items' highest similarity to a
    recent item under the model's own item similarity."""
    if rules_of(model) is None:
        sims = model.item_similarity(list(recent_items)[-max_recent:], items)
        return sims.max(axis=0) if sims.size else np.zeros(len(items))
    out = np.zeros(len(items))
    reached = _rule_scores(model, recent_items, max_recent)
    if reached is None or reached[0].size == 0:
        return out
    cols, scores = reached
    wanted = np.array([model.item_index.get(str(i), -1) for i in items], dtype=np.int64)
    where = np.minimum(np.searchsorted(cols, wanted), cols.size - 1)
    found = cols[where] == wanted
    out[found] = scores[where[found]]
    return out


def _rule_scores(model: Recommender, recent_items: Sequence[object], max_recent: int
                 ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None:
    """(catalogue positions the rules reach from the session, sorted; their scores scaled to
    [0, 1]); None without rules or when no recent item is in the catalogue."""
    rules = rules_of(model)
    if rules is None:
        return None
    recent = [str(i) for i in recent_items][-max_recent:]
    indexed = [(model.item_index.get(item), age) for age, item in
               enumerate(reversed(recent), start=1)]
    rows = [(row, age) for row, age in indexed if row is not None]
    if not rows:
        return None
    # the rows' slices of the CSR arrays, summed with NumPy (no sparse objects per request)
    parts = [(rules.indices[rules.indptr[row]:rules.indptr[row + 1]],
              rules.data[rules.indptr[row]:rules.indptr[row + 1]] / age) for row, age in rows]
    reached_cols = np.concatenate([cols for cols, _ in parts]).astype(np.int64)
    reached = np.concatenate([values for _, values in parts]).astype(np.float64)
    cols, position = np.unique(reached_cols, return_inverse=True)
    # float64 with weights (NumPy's stubs say intp): asarray only restates it, no copy
    scores = np.asarray(np.bincount(position, weights=reached, minlength=cols.size),
                        dtype=np.float64)
    if scores.size:
        scores = scores / scores.max()
    return cols, scores


def _strongest_per_row(matrix: sp.csr_matrix, keep: int) -> sp.csr_matrix:
    matrix = matrix.tocsr()
    counts = np.diff(matrix.indptr)
    if counts.size == 0 or counts.max() <= keep:
        return matrix
    row = np.repeat(np.arange(matrix.shape[0]), counts)
    order = np.lexsort((matrix.indices, -matrix.data, row))  # by row, strongest first
    rank = np.arange(order.size) - matrix.indptr[row[order]]
    chosen = order[rank < keep]
    return sp.csr_matrix((matrix.data[chosen], (row[chosen], matrix.indices[chosen])),
                         shape=matrix.shape)


def popularity_view(model: Recommender, n: int
                    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """(popularity scaled to [0, 1], positions of the `n` most popular items, sorted),
    computed once per model (a derived attribute: never saved, so the digest is unchanged)."""
    cached = getattr(model, CACHE, None)
    if cached is not None and cached[0] == n:
        return cached[1], cached[2]
    popularity = np.asarray(model.popularity, dtype=np.float64)
    top = popularity.max() if popularity.size else 0.0
    scaled = popularity / top if top > 0 else np.zeros_like(popularity)
    size = min(n, popularity.size)
    chosen = np.argpartition(-popularity, size - 1)[:size] if 0 < size < popularity.size \
        else np.arange(size)
    view = (n, scaled, np.sort(chosen))
    setattr(model, CACHE, view)
    return view[1], view[2]

