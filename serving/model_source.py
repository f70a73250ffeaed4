"""The model behind the service: the registry champion (or a fixed URI), hot-swapped when
the alias moves, without dropping requests (readers keep the object they started with)."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from recsys.core.errors import NotFoundError
from recsys.core.models.base import Recommender

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    recommender: Recommender
    version: str
    uri: str


class ModelSource:
    """Holds the current model; `refresh()` swaps in a newly promoted champion."""

    def __init__(self, tracking_uri: str, registered_model: str, model_uri: str | None = None):
        self.tracking_uri = tracking_uri
        self.registered_model = registered_model
        self.fixed_uri = model_uri
        self._current: LoadedModel | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()

    @property
    def current(self) -> LoadedModel:
        if self._current is None:
            raise NotFoundError("no model loaded yet")
        return self._current

    def load(self) -> LoadedModel:
        """Load the configured model (raises NotFoundError when there is no champion)."""
        if self.fixed_uri:
            loaded = LoadedModel(_load(self.fixed_uri), self.fixed_uri, self.fixed_uri)
        else:
            version = self._champion_version()
            uri = f"models:/{self.registered_model}/{version}"
            loaded = LoadedModel(_load(uri), version, uri)
        with self._lock:
            self._current = loaded
        log.info("serving model %s (version %s)", loaded.uri, loaded.version)
        return loaded

    def refresh(self) -> bool:
        """Swap to the champion if its version changed; True when a swap happened."""
        if self.fixed_uri:
            return False
        version = self._champion_version()
        if self._current is not None and version == self._current.version:
            return False
        self.load()
        return True

    def watch(self, every_seconds: float) -> threading.Thread:
        """Refresh in a background thread until `stop()`; failures are logged, not fatal."""
        def loop():
            while not self._stop.wait(every_seconds):
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

    def _champion_version(self) -> str:
        # MLflow is imported only here: the seldon v1 image serves a plain pickle without it
        from recsys.core.registry import CHAMPION, aliases
        from recsys.core.tracking import client_for

        version = aliases(client_for(self.tracking_uri), self.registered_model).get(CHAMPION)
        if version is None:
            raise NotFoundError(f"registered model {self.registered_model!r} has no "
                                "'champion' yet: run the training pipeline first")
        return version


def _load(uri: str) -> Recommender:
    if uri.endswith(".pkl"):
        return Recommender.load(uri)
    from recsys.core.pyfunc import load_recommender

    return load_recommender(uri)
