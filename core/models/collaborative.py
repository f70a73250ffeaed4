"""The collaborative (interaction-only) models by name: the bases a hybrid can blend."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from recsys.core.errors import ConfigError
from recsys.core.models.base import Recommender
from recsys.core.models.ease import EASERecommender
from recsys.core.models.item_knn import ItemKNNRecommender
from recsys.core.models.lightfm_model import LightFMBPRRecommender, LightFMRecommender
from recsys.core.models.popularity import PopularityRecommender
from recsys.core.models.rating_blend import RatingBlendRecommender
from recsys.core.models.rp3beta import RP3betaRecommender
from recsys.core.models.surprise_models import (
    KNNBaselineRecommender,
    KNNWithMeansRecommender,
    SVDppRecommender,
    SVDRecommender,
)

COLLABORATIVE: dict[str, type[Recommender]] = {model.name: model for model in (
    PopularityRecommender, ItemKNNRecommender, RP3betaRecommender, EASERecommender,
    SVDRecommender, SVDppRecommender, RatingBlendRecommender,
    KNNBaselineRecommender, KNNWithMeansRecommender, LightFMRecommender, LightFMBPRRecommender)}


Built = TypeVar("Built")


def instantiate(models: Mapping[str, type[Built]], name: str, *, kind: str = "model",
                **params: object) -> Built:
    """Instantiate `name` from `models` (a `kind` of model: "model", "session model"); an
    unknown name lists the known ones, a bad parameter says which."""
    if name not in models:
        raise ConfigError(f"unknown {kind} {name!r}; known {kind}s: {', '.join(models)}")
    try:
        return models[name](**params)
    except TypeError as error:
        raise ConfigError(f"{kind} {name!r}: bad hyperparameters {params}: {error}") from error
