"""Server readiness that means "the models this server was started with can answer".

MLServer 1.7's server readiness (`/v2/health/ready`, gRPC `ServerReady`) is "every model
currently loaded is ready": with the recsys model unloaded (the repository API's
`unload`) it has no model left and answers ready, while every `/recommend` is a 404 and
Kubernetes keeps sending traffic. Here the server is ready only while every model it was
started with (the model repository's `model-settings.json` files MLServer loads at start)
is loaded and ready; models loaded later through the repository API (Seldon Core v2's
agent) count as MLServer counts them. Model readiness (`/v2/models/<m>/ready`, gRPC
`ModelReady`) already fails for a model that is not loaded (404 / NOT_FOUND).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from mlserver.handlers.dataplane import DataPlane
from mlserver.server import MLServer

if TYPE_CHECKING:
    from mlserver import MLModel
    from mlserver.settings import ModelSettings

_INSTALLED = "_recsys_readiness"


def required_ready(required: frozenset[str], models: Iterable[MLModel]) -> bool:
    """True when every model in `required` is among `models` and every model is ready."""
    models = list(models)
    ready = {model.name for model in models if model.ready}
    return all(model.ready for model in models) and required <= ready


def install() -> None:
    """Patch MLServer's start (to note the models it starts with) and its readiness check
    (to require them). Idempotent."""
    if getattr(DataPlane, _INSTALLED, False):
        return
    start = MLServer.start

    async def start_noting_models(self: MLServer,
                                  models_settings: Iterable[ModelSettings] = ()) -> None:
        self._data_plane.required_models = frozenset(m.name for m in models_settings)
        await start(self, list(models_settings))  # MLServer.start answers None

    async def ready(self: DataPlane) -> bool:
        required: frozenset[str] = getattr(self, "required_models", frozenset())
        return required_ready(required, await self._model_registry.get_models())

    MLServer.start = start_noting_models
    DataPlane.ready = ready
    setattr(DataPlane, _INSTALLED, True)
