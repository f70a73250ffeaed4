"""seldon-core v1 Python wrapper over the same service core.

Run by `seldon-core-microservice recsys.serving.seldon_v1.SeldonRecommender` in its own Python 3.12
environment (seldon-core 1.19 cannot share the main one). It serves a champion exported as a
pickle (`recsys registry export`), so the image needs neither MLflow nor Feast.
Request `{"jsonData": {"user_id": "u1", "k": 10}}` (answer: one recommendation) or
`{"data": {"ndarray": ["u1", "u2"]}}` (answer: `jsonData.recommendations`, one per user).
"""
from __future__ import annotations

import logging

from recsys.core.catalogue import Catalogue
from recsys.core.errors import RecsysError
from recsys.core.settings import Settings, load_settings
from recsys.serving.cache import RecommendationCache
from recsys.serving.config import ServiceConfig
from recsys.serving.model_source import ModelSource
from recsys.serving.service import RecommendationService

log = logging.getLogger(__name__)


def _read_numpy2_pickles() -> None:
    """seldon-core 1.19 needs numpy<2, the training side writes with numpy 2, whose pickles
    name `numpy._core.*`; under numpy 1.x those names live at `numpy.core.*`."""
    import importlib
    import sys

    import numpy

    if int(numpy.__version__.split(".")[0]) >= 2:
        return
    for name in ("numeric", "multiarray", "_multiarray_umath", "fromnumeric"):
        sys.modules.setdefault(f"numpy._core.{name}",
                               importlib.import_module(f"numpy.core.{name}"))


class SeldonRecommender:
    """The v1 wrapper interface: predict, health_status, metrics, tags."""

    def __init__(self, model_path: str | None = None, settings: Settings | None = None):
        _read_numpy2_pickles()
        settings = settings or load_settings()
        path = model_path or settings.model_path
        if not path:
            raise RecsysError("set RECSYS_MODEL_PATH to the exported champion pickle")
        source = ModelSource("", "", model_uri=path)
        source.load()
        self.service = RecommendationService(ServiceConfig(watch_seconds=0), source,
                                             Catalogue(), None, _cache(settings))
        self._last = None

    def predict(self, X, features_names=None, meta=None):
        if isinstance(X, dict):
            request = self.service.parse(X.get("user_id"), X.get("k"), X.get("exclude"))
            self._last = self.service.recommend(request)
            return self._last.as_dict()
        users = [str(u) for u in (X.tolist() if hasattr(X, "tolist") else X)]
        users = [u[0] if isinstance(u, list) else u for u in users]
        results = [self.service.recommend(self.service.parse(u)) for u in users]
        self._last = results[-1] if results else None
        # lists differ in length (rules, small catalogues), so answer as JSON, not ndarray
        return {"recommendations": [{"user_id": u, **r.as_dict()}
                                    for u, r in zip(users, results)]}

    def health_status(self):
        model = self.service.source.current.recommender
        return {"status": "ok", "items": int(model.items.size),
                "model_version": self.service.source.current.version}

    def metrics(self):
        fallback = bool(self._last.fallback) if self._last else False
        return [{"type": "COUNTER", "key": "recsys_v1_requests", "value": 1},
                {"type": "GAUGE", "key": "recsys_v1_last_fallback", "value": int(fallback)}]

    def tags(self):
        tags = {"model_version": self.service.source.current.version}
        if self._last is not None:
            tags.update({"fallback": self._last.fallback, "path": self._last.path})
        return tags


def _cache(settings: Settings) -> RecommendationCache:
    """The shared recommendation cache when a Redis URL is configured explicitly."""
    if "redis_url" not in settings.model_fields_set:
        return RecommendationCache(None, 0)
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_timeout=0.05)
    return RecommendationCache(client, 3600, namespace=settings.event_stream)
