"""seldon-core v1 Python wrapper over the same service core.

Run by `seldon-core-microservice recsys.serving.seldon_v1.SeldonRecommender` in its own Python 3.12
environment (seldon-core 1.19 cannot share the main one). It serves a champion exported as a
data-only model folder (`recsys registry export`, checked against RECSYS_MODEL_SHA256), so
the image needs neither MLflow nor Feast.
Request `{"jsonData": {"user_id": "u1", "k": 10}}` (answer: one recommendation) or
`{"data": {"ndarray": ["u1", "u2"]}}` (answer: `jsonData.recommendations`, one per user;
at most RECSYS_SERVING_MAX_USERS_PER_REQUEST users). Bad requests are answered 400, not 500.
Authentication is the ingress's job in seldon-core v1 (its gateway), see docs/security.md.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from recsys.core.errors import RecsysError
from recsys.core.models.storage import ModelIntegrityError, files_sha256
from recsys.core.online.catalogue import Catalogue
from recsys.core.settings import Settings, load_settings
from recsys.serving.cache import RecommendationCache
from recsys.serving.config import ServiceConfig
from recsys.serving.model_source import ModelSource
from recsys.serving.requests import RequestError
from recsys.serving.service import RecommendationService

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from recsys.serving.answers import Recommendation

    V1Request = dict[str, object] | list[object] | npt.NDArray[np.generic]
    """What seldon-core hands `predict`: `jsonData` as a dict, `data.ndarray` as a list or
    an array of any dtype (one user id per row)."""

log = logging.getLogger(__name__)


class SeldonRecommender:
    """The v1 wrapper interface: predict, health_status, metrics, tags."""

    def __init__(self, model_path: str | None = None,
                 settings: Settings | None = None) -> None:
        settings = settings or load_settings()
        path = model_path or settings.model_path
        if not path or not settings.model_sha256:
            raise RecsysError("set RECSYS_MODEL_PATH to the exported champion folder and "
                              "RECSYS_MODEL_SHA256 to the digest `recsys registry export` "
                              "printed")
        actual = files_sha256(path)
        if actual != settings.model_sha256:
            raise ModelIntegrityError(f"{path}: SHA-256 {actual} is not RECSYS_MODEL_SHA256 "
                                      f"{settings.model_sha256}; refusing to serve it")
        source = ModelSource("", "", model_uri=path)
        source.load()
        self.service = RecommendationService(ServiceConfig(watch_seconds=0), source,
                                             Catalogue(), None, _cache(settings))
        self._last: Recommendation | None = None
        self.max_users = settings.serving_max_users_per_request

    def predict(self, X: V1Request, features_names: list[str] | None = None,
                meta: dict[str, object] | None = None) -> Mapping[str, object]:
        try:
            return self._predict(X)
        except RecsysError as exc:
            if exc.status_code >= 500:
                raise
            raise _http_error(exc) from exc  # the client's mistake: its status, not a 500

    def _predict(self, X: V1Request) -> Mapping[str, object]:
        if isinstance(X, dict):
            request = self.service.parse(X.get("user_id"), X.get("k"), X.get("exclude"))
            self._last = self.service.recommend(request)
            return self._last.as_dict()
        rows = X.tolist() if hasattr(X, "tolist") else X
        if len(rows) > self.max_users:
            raise RequestError(f"at most {self.max_users} users per request "
                               f"(RECSYS_SERVING_MAX_USERS_PER_REQUEST), got {len(rows)}")
        users = [_user_of(row) for row in rows]
        results = [self.service.recommend(self.service.parse(u)) for u in users]
        self._last = results[-1] if results else None
        # lists differ in length (rules, small catalogues), so answer as JSON, not ndarray
        return {"recommendations": [{"user_id": u, **r.as_dict()}
                                    for u, r in zip(users, results)]}

    def health_status(self) -> dict[str, str | int]:
        model = self.service.source.current.recommender
        return {"status": "ok", "items": int(model.items.size),
                "model_version": self.service.source.current.version}

    def metrics(self) -> list[dict[str, str | int]]:
        fallback = bool(self._last.fallback) if self._last else False
        return [{"type": "COUNTER", "key": "recsys_v1_requests", "value": 1},
                {"type": "GAUGE", "key": "recsys_v1_last_fallback", "value": int(fallback)}]

    def tags(self) -> dict[str, object]:
        tags: dict[str, object] = {"model_version": self.service.source.current.version}
        if self._last is not None:
            tags.update({"fallback": self._last.fallback, "path": self._last.path,
                         "recommendation_id": self._last.recommendation_id})
        return tags


def _user_of(row: object) -> str:
    """A row of `data.ndarray`: a user id, or a one-column row holding one."""
    if isinstance(row, list):
        if len(row) != 1:
            raise RequestError(f"each row is one user id, got a row of {len(row)} values")
        row = row[0]
    return str(row)


def _http_error(exc: RecsysError) -> Exception:
    """seldon-core answers its own exception type with the given status (anything else is a
    500); outside the seldon-core environment the error itself."""
    try:
        from seldon_core.flask_utils import SeldonMicroserviceException
    except ImportError:
        return exc
    error: Exception = SeldonMicroserviceException(exc.message, status_code=exc.status_code,
                                                   reason=type(exc).__name__)
    return error


def _cache(settings: Settings) -> RecommendationCache:
    """The shared recommendation cache when a Redis URL is configured explicitly."""
    if "redis_url" not in settings.model_fields_set:
        return RecommendationCache(None, 0)
    from recsys.core.online.fail_fast_redis import CircuitBreaker, fail_fast_client

    config = ServiceConfig()
    breaker = CircuitBreaker("Redis (cache)", config.redis_breaker_failures,
                             config.redis_breaker_cool_down_seconds)
    return RecommendationCache(fail_fast_client(settings.redis_url, config.redis_timeout_seconds,
                                                breaker),
                               config.cache_ttl_seconds, namespace=settings.event_stream)
