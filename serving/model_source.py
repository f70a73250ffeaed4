"""The model behind the service: the registry champion (or a fixed URI), hot-swapped when
the alias moves, without dropping requests (readers keep the object they started with).

Serving always answers: a model is taken only after a smoke test (a known user, a cold
user and similar items score without an error and with finite scores). At start, a
champion that cannot be loaded or fails the test is replaced by `previous`; when neither
can serve (or the registry cannot be read, or has no champion yet), by the popularity
baseline built from the lake's newest item_stats snapshot. The `LoadedModel` says so
(`fallback_reason`; the service exports it as the gauge `recsys_serving_fallback_model`
and logs it), and the watcher swaps the champion in as soon as it loads and passes. At a
hot swap, a new champion that fails is not swapped in and the current model keeps
serving. Requests read `current` once and use that snapshot end to end.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recsys.core.errors import NotFoundError, RecsysError
from recsys.core.models.base import Recommender
from recsys.core.online.heap_policy import freeze_swapped_in_heap
from recsys.serving.polling import wait_next

log = logging.getLogger(__name__)
SMOKE_COLD_USER = "__recsys_smoke_test_cold_user__"
BASELINE_VERSION = "popularity-baseline"
"""`LoadedModel.version` of the lake-built popularity baseline (not a registry version)."""
RegistryHealth = dict[str, float | bool | None]
"""What the registry says of the champion for the alerts (`core.lifecycle.registry`):
drift_detected, monitored_at and newest_version_registered_at (None: not known)."""


class ModelUnhealthy(RecsysError):
    """A model loaded but failed the smoke test (or could not be loaded at all)."""

    status_code = 503


@dataclass(frozen=True)
class LoadedModel:
    recommender: Recommender
    version: str
    uri: str
    fallback_reason: str | None = None
    """Why this is not the champion (None when it is)."""


def smoke_test(model: Recommender, k: int = 5) -> None:
    """Raise ModelUnhealthy unless the model scores a known user, a cold user and similar
    items without an error, with finite scores."""
    try:
        checks = []
        if len(model.users):
            checks.append(("a known user", model.top_items(str(model.users[0]), k)[1]))
        checks.append(("a cold user", model.recommend([SMOKE_COLD_USER], k)["score"]))
        if len(model.items):
            checks.append(("similar items", model.item_similarity(
                [str(model.items[0])], model.items[: min(len(model.items), 50)])[0]))
    except Exception as exc:
        raise ModelUnhealthy(f"smoke test failed: {type(exc).__name__}: {exc}") from exc
    for what, scores in checks:
        values = np.asarray(scores, dtype=float)
        if values.size == 0 or not np.isfinite(values).any():
            raise ModelUnhealthy(f"smoke test failed: no finite scores for {what}")


class ModelSource:
    """Holds the current model; `refresh()` swaps in a newly promoted champion."""

    def __init__(self, tracking_uri: str, registered_model: str, model_uri: str | None = None,
                 baseline: Callable[[], Recommender] | None = None,
                 model_sha256: str | None = None, model_version: str | None = None) -> None:
        """`baseline` builds the last-resort model (popularity from the lake) when no
        registered version can serve; without it such a start fails. `model_sha256`: the
        digest an exported folder given as `model_uri` must have (it loads only then);
        `model_version`: the registry version it was exported from (what answers report)."""
        self.tracking_uri = tracking_uri
        self.registered_model = registered_model
        self.fixed_uri = model_uri
        self.fixed_sha256 = model_sha256
        self.fixed_version = model_version
        self.baseline = baseline
        self._current: LoadedModel | None = None
        self.registry_health: RegistryHealth = {}
        """What the last champion check read of the registry for alerts (drift found on
        the champion, when monitoring last ran, when the newest version was registered);
        empty for a fixed model or before the first check."""
        self.before_swap: Callable[[LoadedModel], object] | None = None
        """Called with a newly promoted champion before it answers (the service warms it:
        `RecommendationService.warm_version`); a failure there is logged, not fatal."""
        self._rejected: str | None = None  # a champion version that failed: not retried
        self._lock = threading.Lock()
        self._stop = threading.Event()

    @property
    def current(self) -> LoadedModel:
        if self._current is None:
            raise NotFoundError("no model loaded yet")
        return self._current

    def load(self) -> LoadedModel:
        """Load the configured model: the champion; if it cannot serve, `previous`; if
        neither can (or the registry cannot say), the baseline. Raises ModelUnhealthy when
        nothing can serve."""
        if self.fixed_uri:
            loaded = LoadedModel(checked_model(self.fixed_uri, self.fixed_sha256),
                                 self.fixed_version or self.fixed_uri, self.fixed_uri)
        else:
            try:
                loaded = self._registered()
            except Exception as exc:
                loaded = self._baseline(exc)
            else:
                self._read_registry_health(self._alias_versions()["champion"])
        self._set(loaded)
        return loaded

    def _registered(self) -> LoadedModel:
        versions = self._alias_versions()
        version = versions["champion"]
        try:
            return self._loaded(version)
        except Exception as exc:
            self._rejected = version  # not retried by the watcher until the alias moves
            previous = versions.get("previous")
            reason = f"champion v{version} unusable: {exc}"
            if previous is None or previous == version:
                raise ModelUnhealthy(f"{reason}; no 'previous' version to serve") from exc
            log.error("%s - serving previous v%s instead", reason, previous)
            try:
                return self._loaded(previous, fallback_reason=reason)
            except Exception as previous_exc:
                raise ModelUnhealthy(f"{reason}; previous v{previous} unusable too: "
                                     f"{previous_exc}") from previous_exc

    def _baseline(self, cause: Exception) -> LoadedModel:
        """The popularity baseline, standing in because of `cause`."""
        if self.baseline is None:
            raise cause
        reason = f"no registered version can serve ({type(cause).__name__}: {cause})"
        try:
            model = self.baseline()
            smoke_test(model)
        except Exception as exc:
            raise ModelUnhealthy(f"{reason}; the popularity baseline is unusable too: "
                                 f"{type(exc).__name__}: {exc}") from exc
        log.error("%s - serving the popularity baseline from the lake instead", reason)
        return LoadedModel(model, BASELINE_VERSION, "lake:features/item_stats", reason)

    def refresh(self) -> bool:
        """Swap to the champion if its version changed and the new one passes the smoke
        test; True when a swap happened. A failing new champion is not swapped in (the
        current model keeps serving) and the failure is raised for the watcher to log."""
        if self.fixed_uri:
            return False
        if self._current is None:
            self.load()
            return True
        version = self._alias_versions()["champion"]
        self._read_registry_health(version)
        current = self._current
        if version in (current.version, self._rejected):
            return False
        try:
            loaded = self._loaded(version)
        except ModelUnhealthy:
            self._rejected = version
            raise
        if self.before_swap is not None:
            try:  # the current model keeps answering while the new one warms
                self.before_swap(loaded)
            except Exception as exc:
                log.warning("warming version %s failed (serving it cold): %s", version, exc)
        self._set(loaded)
        freeze_swapped_in_heap()  # full collections keep walking request garbage only
        return True

    def load_version(self, version: str) -> LoadedModel:
        """A registered version, loaded and smoke-tested (an experiment's variant)."""
        return self._loaded(version)

    def _loaded(self, version: str, fallback_reason: str | None = None) -> LoadedModel:
        uri = f"models:/{self.registered_model}/{version}"
        return LoadedModel(checked_model(uri), version, uri, fallback_reason)

    def _set(self, loaded: LoadedModel) -> None:
        with self._lock:
            self._current = loaded
        log.info("serving model %s (version %s)%s", loaded.uri, loaded.version,
                 f" as a fallback: {loaded.fallback_reason}" if loaded.fallback_reason else "")

    def watch(self, every_seconds: float) -> threading.Thread:
        """Refresh in a background thread until `stop()`; failures are logged, not fatal."""
        def loop() -> None:
            while not wait_next(self._stop, every_seconds):
                try:
                    if self.refresh():
                        log.info("champion moved: now serving version %s", self.current.version)
                except Exception as exc:  # keep serving the old model
                    log.warning("champion check failed: %s", exc)

        thread = threading.Thread(target=loop, name="champion-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Stop the champion watcher (`stop`); the current model keeps answering."""
        self.stop()

    def _read_registry_health(self, champion: str) -> None:
        from recsys.core.lifecycle.registry import registry_health
        from recsys.core.lifecycle.tracking import client_for

        try:
            self.registry_health = registry_health(client_for(self.tracking_uri),
                                                   self.registered_model, champion)
        except Exception as exc:  # alerts go stale (and say so), serving goes on
            log.warning("registry health not read: %s", exc)

    def _alias_versions(self) -> dict[str, str]:
        # MLflow is imported only here: the seldon v1 image serves an exported folder without it
        from recsys.core.lifecycle.registry import CHAMPION, aliases
        from recsys.core.lifecycle.tracking import client_for

        versions = aliases(client_for(self.tracking_uri), self.registered_model)
        if versions.get(CHAMPION) is None:
            raise NotFoundError(f"registered model {self.registered_model!r} has no "
                                "'champion' yet: run the training pipeline first")
        return versions


def checked_model(uri: str, sha256: str | None = None) -> Recommender:
    """The model at `uri`, loaded and smoke-tested."""
    try:
        model = _load(uri, sha256)
    except Exception as exc:
        raise ModelUnhealthy(f"cannot load {uri}: {type(exc).__name__}: {exc}") from exc
    smoke_test(model)
    return model


def _load(uri: str, sha256: str | None = None) -> Recommender:
    """A registered version (`models:/...`, checked against its recorded SHA-256), or an
    exported model folder (checked against `sha256` when given; the seldon v1 wrapper
    checks its folder itself)."""
    if not uri.startswith("models:/"):
        from recsys.core.models.storage import load_model

        return load_model(uri, expected_sha256=sha256)
    from recsys.core.lifecycle.pyfunc import load_recommender

    return load_recommender(uri)
