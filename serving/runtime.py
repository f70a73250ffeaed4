"""MLServer runtime (Seldon Core v2, Open Inference / V2 protocol) over the service core.

V2 inputs: `user_id` (BYTES, required unless `item_id` is given), optional `k` (INT32),
`item_id` (BYTES, similar items instead), `exclude` (BYTES, any length), `explain` (BOOL).
Outputs: `item_ids` (BYTES), `scores` (FP32); response parameters `model_version`,
`fallback`, `path`, `experiment`, `variant` (null outside an experiment),
`recommendation_id`, and with `explain` `rules_applied` (JSON text) and `scorer` (what scored
the list: the model, the model blended with the session, the session model or rules).
Plain REST for shops that do not speak V2: GET /recommend/{user_id}?top_k=10[&explain=true] and
GET /similar/{item_id}?top_k=10; GET /recsys/metrics serves the Prometheus metrics and
GET /recsys/status the model answering (and why, when it is a fallback).
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import Response
from mlserver import MLModel
from mlserver.codecs import StringCodec
from mlserver.errors import MLServerError
from mlserver.handlers import custom_handler
from mlserver.types import InferenceRequest, InferenceResponse, Parameters, ResponseOutput
from mlserver.utils import get_model_uri
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from recsys.core.errors import RecsysError
from recsys.core.online.heap_policy import freeze_startup_heap
from recsys.serving.answers import Recommendation
from recsys.serving.arm_forwarding import ArmForwarder, V2Body
from recsys.serving.artifact import ARTIFACT_FLAG, artifact_options
from recsys.serving.build import build_service
from recsys.serving.experiment_router import ArmElsewhere
from recsys.serving.registry_reads import bound_registry_calls
from recsys.serving.requests import check_shape

if TYPE_CHECKING:
    from recsys.serving.collaborators import ListAnswer
    from recsys.serving.config import ServiceConfig
    from recsys.serving.requests import RecommendRequest
    from recsys.serving.service import RecommendationService

log = logging.getLogger(__name__)
INPUTS = {"user_id": "BYTES", "k": "INT32", "item_id": "BYTES", "exclude": "BYTES",
          "explain": "BOOL"}


@dataclass(frozen=True)
class V2Inputs:
    """The named inputs of a V2 request, decoded (`RecsysRuntime._check_request`)."""

    ids: dict[str, list[str]]
    """The BYTES inputs (`user_id`, `item_id`, `exclude`) by name."""
    values: dict[str, object]
    """`k` and `explain` by name: one value each, checked by the service."""


class RecsysRuntime(MLModel):  # type: ignore[misc]  # mlserver ships no type hints
    service: RecommendationService
    forwarder: ArmForwarder | None
    """Both set by `load`."""

    async def load(self) -> bool:
        extra = (self.settings.parameters.extra if self.settings.parameters else None) or {}
        if extra.get(ARTIFACT_FLAG):  # deployed from an exported artifact (Seldon v2, KServe)
            extra = artifact_options(extra, await get_model_uri(self.settings))
        bound_registry_calls()  # an unreachable registry must not hold the start for minutes
        self.service = build_service(extra)
        self.forwarder = _arm_forwarder(self.service.config)
        self.service.warm_up()
        # a hot-swapped model's arrays still go when the last request using them ends
        freeze_startup_heap()
        self.ready = True
        return self.ready

    async def unload(self) -> bool:
        """Stop what `load` started; after a load that failed part way (MLServer unloads
        then too) only what exists."""
        forwarder = getattr(self, "forwarder", None)
        if forwarder is not None:
            await forwarder.close()
        service = getattr(self, "service", None)
        if service is not None:
            service.close()
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        with self._counted("v2"):
            inputs = self._check_request(payload)
            ids, values = inputs.ids, inputs.values
            if "item_id" in ids and "user_id" not in ids:
                result = self.service.similar(ids["item_id"][0], values.get("k"))
            else:
                request = self.service.parse(ids.get("user_id", [None])[0], values.get("k"),
                                             ids.get("exclude"),
                                             explain=values.get("explain", False))
                try:
                    result = self.service.recommend(request)
                except ArmElsewhere as elsewhere:
                    body = await self._forward(elsewhere, payload.model_dump(
                        mode="json", exclude_none=True))
                    return InferenceResponse.model_validate(body)
        return self._encode(result, payload.id)

    async def _forward(self, elsewhere: ArmElsewhere, body: V2Body) -> V2Body:
        """A V2 request of another arm's user, answered by that arm (`arm_forwarding.py`)."""
        arm = elsewhere.arm
        if self.forwarder is None:
            raise MLServerError(f"variant {arm.variant!r} is served by another arm and this "
                                "server has no arm settings to forward it", 500)
        counter = self.service.metrics.forwarded
        try:
            answer = await self.forwarder.forward(arm.variant, body)
        except Exception:
            counter.labels(arm.experiment, arm.variant, "failed").inc()
            raise
        counter.labels(arm.experiment, arm.variant, "ok").inc()
        return answer

    @contextmanager
    def _counted(self, endpoint: str) -> Iterator[None]:
        """Count the request by outcome (`ok`, `client_error`, `error`: what the serving
        alerts read) and turn project errors into MLServer errors with their status."""
        requests = self.service.metrics.requests
        try:
            yield
        except MLServerError as exc:
            status = getattr(exc, "status_code", 500)
            requests.labels(endpoint, "client_error" if status < 500 else "error").inc()
            raise
        except RecsysError as exc:
            requests.labels(endpoint,
                            "client_error" if exc.status_code < 500 else "error").inc()
            raise MLServerError(exc.message, exc.status_code) from exc
        except Exception:
            requests.labels(endpoint, "error").inc()
            raise
        requests.labels(endpoint, "ok").inc()

    def _check_request(self, payload: InferenceRequest) -> V2Inputs:
        """Decode the named inputs, refusing unknown names and wrong datatypes."""
        ids: dict[str, list[str]] = {}
        values: dict[str, object] = {}
        for item in payload.inputs:
            if item.name not in INPUTS:
                raise MLServerError(f"unknown input {item.name!r}; allowed inputs: "
                                    f"{', '.join(INPUTS)}", 400)
            if item.datatype != INPUTS[item.name]:
                raise MLServerError(f"input {item.name!r} must have datatype "
                                    f"{INPUTS[item.name]}, got {item.datatype}", 400)
            if item.name in ("k", "explain"):
                data = item.data.root if hasattr(item.data, "root") else item.data
                flat = list(data) if isinstance(data, (list, tuple)) else [data]
                if len(flat) != 1:
                    raise MLServerError(f"input {item.name!r} must hold one value, got "
                                        f"{len(flat)}", 400)
                check_shape(item.shape, len(flat), item.name)
                values[item.name] = flat[0]
            else:
                try:
                    ids[item.name] = StringCodec.decode_input(item)
                except Exception as exc:
                    raise MLServerError(f"input {item.name!r} is not valid BYTES: {exc}",
                                        400) from exc
                check_shape(item.shape, len(ids[item.name]), item.name)
        if "user_id" not in ids and "item_id" not in ids:
            raise MLServerError("missing input 'user_id' (or 'item_id' for similar items)", 400)
        for name in ("user_id", "item_id"):
            if name in ids and len(ids[name]) != 1:
                raise MLServerError(f"input {name!r} must hold exactly one id, got "
                                    f"{len(ids[name])}", 400)
        return V2Inputs(ids, values)

    def _encode(self, result: Recommendation, request_id: str | None) -> InferenceResponse:
        return InferenceResponse(
            model_name=self.name, model_version=result.model_version, id=request_id,
            parameters=Parameters(model_version=result.model_version, fallback=result.fallback,
                                  path=result.path, cached=result.cached,
                                  experiment=result.experiment, variant=result.variant,
                                  recommendation_id=result.recommendation_id,
                                  **({} if result.rules_applied is None else
                                     {"rules_applied": orjson.dumps(
                                         result.rules_applied).decode()}),
                                  **({} if result.scorer is None else
                                     {"scorer": result.scorer})),
            outputs=[StringCodec.encode_output("item_ids", result.item_ids),
                     ResponseOutput(name="scores", datatype="FP32",
                                    shape=[len(result.scores)], data=result.scores)])

    @custom_handler(rest_path="/recommend/{user_id}", rest_method="GET")  # type: ignore[untyped-decorator]  # mlserver: no hints
    async def recommend_get(self, user_id: str, top_k: int = 10,
                            explain: bool = False) -> Response:
        with self._counted("recommend"):
            request = self.service.parse(user_id, top_k, explain=explain)
            try:
                result = self.service.recommend(request)
            except ArmElsewhere as elsewhere:
                answer = await self._forward(elsewhere, _v2_request(request))
                return _json({"user_id": user_id, **_rest_answer(answer)})
        return _json({"user_id": user_id, **result.as_dict()})

    @custom_handler(rest_path="/similar/{item_id}", rest_method="GET")  # type: ignore[untyped-decorator]  # mlserver: no hints
    async def similar_get(self, item_id: str, top_k: int = 10) -> Response:
        with self._counted("similar"):
            result = self.service.similar(item_id, top_k)
        return _json({"item_id": item_id, **result.as_dict()})

    @custom_handler(rest_path="/recsys/status", rest_method="GET")  # type: ignore[untyped-decorator]  # mlserver: no hints
    async def status_get(self) -> Response:
        """Which model answers and, when it is not the champion, why (the readiness reason)."""
        current = self.service.source.current
        router = self.service.experiments
        active = router.active if router else None
        experiment: dict[str, object] | None = None if active is None else {
            "name": active.definition.name, "coverage": active.definition.coverage,
            "variants": {v.label: {"target": v.target, "version": v.version,
                                   "weight": v.weight} for v in active.definition.variants},
            "model_bytes": active.model_bytes}
        return _json({"model_version": current.version, "model_uri": current.uri,
                      "fallback": current.fallback_reason is not None,
                      "fallback_reason": current.fallback_reason, "experiment": experiment,
                      "experiment_error": router.error if router else None})

    @custom_handler(rest_path="/recsys/metrics", rest_method="GET")  # type: ignore[untyped-decorator]  # mlserver: no hints
    async def metrics_get(self) -> Response:
        registry = self.service.metrics.registry
        current = self.service.source.current
        self.service.metrics.observe_model(current.version)
        self.service.metrics.fallback_model.set(1 if current.fallback_reason else 0)
        self.service.metrics.observe_registry(self.service.source.registry_health)
        router = self.service.experiments
        self.service.metrics.observe_experiment(router.active if router else None)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _arm_forwarder(config: ServiceConfig) -> ArmForwarder | None:
    """The forwarder of one arm's server (an arm artifact's settings); None otherwise."""
    if config.experiment_arm is None:
        return None
    from recsys.core.online.bearer_keys import a_surface_key
    from recsys.core.settings import load_settings
    from recsys.serving.auth import SERVICE_TOKEN_FILE

    settings = load_settings()
    token = a_surface_key(settings.serving_token, settings.serving_token_file,
                          settings.state_dir, SERVICE_TOKEN_FILE)
    return ArmForwarder(config.experiment_arm, config.experiment_arm_models, token,
                        config.experiment_mesh_url, config.experiment_arm_urls,
                        config.experiment_forward_timeout_seconds)


def _v2_request(request: RecommendRequest) -> V2Body:
    """The V2 inference request of a parsed REST request (to forward it to another arm)."""
    inputs: list[dict[str, object]] = [
        {"name": "user_id", "datatype": "BYTES", "shape": [1], "data": [request.user_id]},
        {"name": "k", "datatype": "INT32", "shape": [1], "data": [request.k]},
        {"name": "explain", "datatype": "BOOL", "shape": [1], "data": [request.explain]}]
    if request.exclude:
        inputs.append({"name": "exclude", "datatype": "BYTES", "shape": [len(request.exclude)],
                       "data": list(request.exclude)})
    return {"inputs": inputs}


def _rest_answer(body: V2Body) -> ListAnswer:
    """The REST answer (`Recommendation.as_dict`) of another arm's V2 response."""
    return _recommendation_of(body).as_dict()


def _recommendation_of(body: V2Body) -> Recommendation:
    """The `Recommendation` another arm encoded (`_encode`) in its V2 response."""
    outputs = {output["name"]: output["data"] for output in body.get("outputs", [])}
    parameters: dict[str, Any] = body.get("parameters") or {}
    rules_applied = parameters.get("rules_applied")
    return Recommendation(
        item_ids=list(outputs.get("item_ids", [])), scores=list(outputs.get("scores", [])),
        # `_encode` always writes these four
        model_version=parameters["model_version"], fallback=parameters["fallback"],
        path=parameters["path"], cached=parameters["cached"],
        experiment=parameters.get("experiment"), variant=parameters.get("variant"),
        recommendation_id=parameters.get("recommendation_id"),
        rules_applied=None if rules_applied is None else orjson.loads(rules_applied),
        scorer=parameters.get("scorer"))


def _json(payload: Mapping[str, object]) -> Response:
    """Serialised once with orjson (a returned dict would go through FastAPI's encoder)."""
    return Response(orjson.dumps(payload), media_type="application/json")


