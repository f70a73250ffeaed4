"""Every trainable model by name, with its default hyperparameters."""
from __future__ import annotations

from typing import Any

from recsys.core.models.base import Recommender
from recsys.core.models.blend import BlendRecommender
from recsys.core.models.collaborative import COLLABORATIVE, instantiate
from recsys.core.models.content import ContentRecommender
from recsys.core.models.hybrid import HybridRecommender
from recsys.core.models.reranker import FeatureReranker
from recsys.core.models.session_base import SessionModel
from recsys.core.models.session_zoo import SESSION_MODELS

MODELS: dict[str, type[Recommender]] = {
    **COLLABORATIVE, ContentRecommender.name: ContentRecommender,
    HybridRecommender.name: HybridRecommender, FeatureReranker.name: FeatureReranker,
    BlendRecommender.name: BlendRecommender}


def model_classes() -> dict[str, type[Recommender] | type[SessionModel]]:
    """The classes a stored model may name (the zoo's and the models they nest, and the
    next-item session models of `session_knn`), by name."""
    found: dict[str, type[Recommender] | type[SessionModel]] = {
        cls.__name__: cls for cls in SESSION_MODELS.values()}
    for model in MODELS.values():
        for cls in model.__mro__:
            if issubclass(cls, Recommender) and cls is not Recommender:
                found[cls.__name__] = cls
    return found


def build_model(name: str, **params: Any) -> Recommender:
    """Instantiate a model by name; an unknown name lists the known ones."""
    return instantiate(MODELS, name, **params)
