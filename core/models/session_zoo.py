"""The session zoo: every next-item session model by name.

`session_knn.py` (sequential rules, SKNN, V-SKNN, STAN, SLIST), `session_ensemble.py` (their
weighted ensemble) and `session_neural.py` (GRU4Rec and SASRec, PyTorch imported only when
one is fitted or scored: the `neural` extra). What the training pipeline's `session_model`
parameter, the serving path and `recsys bench models --protocol next-item` name.
"""
from __future__ import annotations

from typing import Any

from recsys.core.models.collaborative import instantiate
from recsys.core.models.session_base import SessionModel
from recsys.core.models.session_ensemble import SessionEnsemble
from recsys.core.models.session_knn import SLIST, STAN, VSKNN, SequentialRules, SessionKNN
from recsys.core.models.session_neural import GRU4Rec, SASRec

SESSION_MODELS: dict[str, type[SessionModel]] = {
    model.name: model for model in (SequentialRules, SessionKNN, VSKNN, STAN, SLIST,
                                    SessionEnsemble, GRU4Rec, SASRec)}


def build_session_model(name: str, **params: Any) -> SessionModel:
    """A session model by its zoo name; an unknown name or parameter is a ConfigError."""
    return instantiate(SESSION_MODELS, name, kind="session model", **params)
