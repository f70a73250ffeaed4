"""What scores a live session: the recommender's next-item session model when it carries
one, else its session rules.

A fitted recommender may carry a next-item session model (`session_base.SessionModel`:
the session zoo's sequential rules by default, any of `SESSION_MODELS`) learned from the
training window's sessions, anonymous visitors included, over the recommender's own
catalogue: item id `p + 1` of the session model is catalogue position `p` (0 is padding).
It is saved inside the recommender's folder (`storage.py` nests it), so one registry
version and one SHA-256 carry both the long-term model and the session model.

Serving (`serving/answers.py`) and the offline next-item protocol
(`components/evaluate/sessions.py`) both call `session_candidates` / `session_top` here,
so what the gate measures is what is served. Items of the live list the catalogue does not
know are skipped; a session with no known item gets no candidates (the caller falls back).
"""
from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import Unpack

import numpy as np
import numpy.typing as npt
import pandas as pd

from recsys.core.data.columns import Columns
from recsys.core.errors import ConfigError, missing_columns_error
from recsys.core.models.base import Hyperparameters, Recommender
from recsys.core.models.session_base import SessionModel
from recsys.core.models.session_rules import (
    RulesScoring,
    popularity_view,
    rules_of,
    session_sequences,
)
from recsys.core.models.session_rules import session_affinity as rules_affinity
from recsys.core.models.session_rules import session_candidates as rules_candidates
from recsys.core.models.session_zoo import SESSION_MODELS, build_session_model

log = logging.getLogger(__name__)
C = Columns
ATTRIBUTE = "session_model"
"""The fitted recommender's attribute holding its next-item session model."""
DEFAULT_SESSION_MODEL = "sequential_rules"
"""Level with V-SKNN on RetailRocket (P@20 0.560 vs 0.570, MRR@20 0.288 vs 0.289) at a
third of its scoring cost per request, which serving pays on every uncached visitor."""
CANDIDATES = 200
"""Items a session model proposes (its best scores) before business rules and `k`."""
SESSION_MODEL = "session_model"
SESSION_RULES = "session_rules"
NO_SCORER = "none"


def fit_session_model(model: Recommender, events: pd.DataFrame,
                      name: str = DEFAULT_SESSION_MODEL, params: Hyperparameters | None = None
                      ) -> SessionModel | None:
    """Learn a next-item session model `name` over the fitted `model`'s catalogue from
    `events` (session_id, item_id, timestamp; anonymous sessions too), oldest session first,
    and keep it on the model. Items outside the catalogue are skipped; None (and nothing
    kept) when no session has a catalogue item."""
    if name not in SESSION_MODELS:
        raise ConfigError(f"unknown session model {name!r}; known: {', '.join(SESSION_MODELS)}")
    model._check_fitted()
    sessions = catalogue_sessions(model, events)
    if not sessions:
        log.warning("no training session holds a catalogue item: %s not trained", name)
        return None
    session_model = build_session_model(name, **(params or {})).fit(sessions, model.items.size)
    setattr(model, ATTRIBUTE, session_model)
    return session_model


def catalogue_sessions(model: Recommender, events: pd.DataFrame) -> list[list[int]]:
    """The sessions of `events` as lists of session-model item ids (catalogue position + 1),
    in the order the sessions started; consecutive repeats removed, unknown items skipped,
    sessions left empty dropped."""
    missing = [c for c in (C.session_id, C.item_id, C.timestamp) if c not in events.columns]
    if missing:
        raise missing_columns_error("session model", missing, events.columns)
    sequences = session_sequences(events)
    if sequences.empty:
        return []
    started = (events.loc[events[C.session_id].notna()]
               .groupby(events[C.session_id].astype(str))[C.timestamp].min())
    codes = pd.Index(model.items).get_indexer(sequences[C.item_id]) + 1
    frame = pd.DataFrame({"session": sequences[C.session_id].to_numpy(), "code": codes})
    frame = frame[frame["code"] > 0]
    grouped = frame.groupby("session", sort=False)["code"]
    lists = {session: values.tolist() for session, values in grouped}
    order = started.reindex(list(lists)).sort_values(kind="stable").index
    return [lists[session] for session in order]


def session_model_of(model: Recommender) -> SessionModel | None:
    """The recommender's next-item session model, or None (one trained without it)."""
    found: SessionModel | None = getattr(model, ATTRIBUTE, None)
    return found


def scorer_of(model: Recommender, use_session_model: bool = True) -> str:
    """Which scorer answers a live session for `model`: `session_model:<name>`,
    `session_rules`, or `none` (popularity answers). `use_session_model=False` (serving's
    `session_scorer: rules`) leaves the session model out, everywhere below too."""
    session_model = session_model_of(model) if use_session_model else None
    if session_model is not None:
        return f"{SESSION_MODEL}:{session_model.name}"
    return SESSION_RULES if rules_of(model) is not None else NO_SCORER


def _session_model_scores(model: Recommender, recent_items: Sequence[object],
                          use_session_model: bool) -> npt.NDArray[np.float64] | None:
    """The session model's score of every catalogue position for the session, or None
    without a session model (or not to use it) or when no recent item is in the
    catalogue."""
    session_model = session_model_of(model) if use_session_model else None
    if session_model is None:
        return None
    codes = [model.item_index[item] + 1 for item in map(str, recent_items)
             if item in model.item_index]
    if not codes:
        return None
    return np.asarray(session_model.score([codes])[0][1:], dtype=np.float64)


def session_candidates(model: Recommender, recent_items: Sequence[object],
                       candidates: int = CANDIDATES, use_session_model: bool = True,
                       **rules_scoring: Unpack[RulesScoring]
                       ) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.float64]]:
    """(items, scores) for a session whose items are `recent_items` (oldest first): the
    session model's `candidates` best items, or without one the session rules' candidates
    (`rules_scoring` are their options). Empty when nothing scores the session."""
    scores = _session_model_scores(model, recent_items, use_session_model)
    if scores is None:
        if use_session_model and session_model_of(model) is not None:
            return np.array([], dtype=object), np.array([], dtype=np.float64)
        return rules_candidates(model, recent_items, **rules_scoring)
    allowed = np.isfinite(scores)
    if not getattr(model, "scores_cold_items", False) and model.cold_items is not None:
        allowed &= ~np.asarray(model.cold_items, dtype=bool)
    positions = np.flatnonzero(allowed)
    if positions.size > candidates:
        best = np.argpartition(-scores[positions], candidates - 1)[:candidates]
        positions = positions[best]
    return model.items[positions], scores[positions]


def session_affinity(model: Recommender, recent_items: Sequence[object],
                     items: Collection[object], use_session_model: bool = True
                     ) -> npt.NDArray[np.float64]:
    """How strongly each of `items` follows the session, in [0, 1] (known users' blend of
    the long-term model with the session): the session model's scores over their maximum,
    or without one the session rules' affinity."""
    scores = _session_model_scores(model, recent_items, use_session_model)
    if scores is None:
        if use_session_model and session_model_of(model) is not None:
            return np.zeros(len(items))
        return rules_affinity(model, recent_items, items)
    positions = np.array([model.item_index.get(str(i), -1) for i in items], dtype=np.int64)
    out = np.where(positions >= 0, scores[np.maximum(positions, 0)], 0.0)
    out = np.where(np.isfinite(out), np.maximum(out, 0.0), 0.0)
    top = out.max() if out.size else 0.0
    return out / top if top > 0 else out


def session_top(model: Recommender, recent_items: Sequence[object], k: int,
                **rules_scoring: Unpack[RulesScoring]) -> list[str]:
    """The k best items for a session, the newest session item excluded (the visitor is on
    its page); popularity when nothing scores the session. What the offline protocol ranks;
    serving applies its business rules to the same candidates."""
    items, scores = session_candidates(model, recent_items, **rules_scoring)
    if items.size == 0:
        scaled, top = popularity_view(model, k + 1)
        items, scores = model.items[top], scaled[top]
    newest = str(recent_items[-1]) if len(recent_items) else None
    order = np.lexsort((items.astype(str), -scores))
    ranked = [str(items[i]) for i in order if str(items[i]) != newest]
    return ranked[:k]
