"""One arm of an experiment forwards the users of the other arms to their server.

A Seldon `Experiment` over the arm Models (`experiments/seldon.py`) picks a candidate per
request; the user's variant is the project's hashed assignment. When the two differ, the
arm that received the request sends it on, as a V2 inference request, to the arm Model of
the user's variant: through the Seldon mesh (`experiment_mesh_url`, the Model's name in the
`seldon-model` header) or straight to its URL (`experiment_arm_urls`). That arm answers and
logs the exposure; its answer goes back unchanged.

A forwarded request is marked (`recsys_forwarded_from` in the request parameters) and never
forwarded again: if the receiving arm computes another variant, the arms disagree on the
definition and the request fails (500) rather than serve a variant to the wrong user. An
arm that cannot be reached within the timeout gives 503: answering from the arm at hand
would put the user in two variants.
"""
from __future__ import annotations

import logging
from typing import Any

import httpx
from mlserver.errors import MLServerError

from recsys.core.errors import ConfigError

log = logging.getLogger(__name__)
FORWARDED_FROM = "recsys_forwarded_from"
"""Request parameter naming the arm that forwarded the request."""
MAX_CONNECTIONS = 64
V2Body = dict[str, Any]
"""A V2 (Open Inference) request or response body as JSON: MLServer's types define and check
it (`InferenceRequest`, `InferenceResponse`); an arm only relays it."""


class ArmForwarder:
    def __init__(self, own_arm: str, arm_models: dict[str, str], token: str,
                 mesh_url: str | None = None, arm_urls: dict[str, str] | None = None,
                 timeout_seconds: float = 2.0) -> None:
        arm_urls = dict(arm_urls or {})
        missing = [label for label in arm_models if label != own_arm
                   and label not in arm_urls and not mesh_url]
        if missing:
            raise ConfigError(f"arm {own_arm!r}: no way to reach arm(s) {missing}: set "
                              "experiment_mesh_url or experiment_arm_urls")
        self.own_arm, self.arm_models, self.token = own_arm, dict(arm_models), token
        self.mesh_url = mesh_url.rstrip("/") if mesh_url else None
        self.arm_urls = {label: url.rstrip("/") for label, url in arm_urls.items()}
        self.timeout = httpx.Timeout(timeout_seconds)
        self._client: httpx.AsyncClient | None = None

    def target(self, label: str) -> tuple[str, dict[str, str]]:
        """The URL and headers of a V2 inference request to arm `label`."""
        model = self.arm_models.get(label)
        if model is None:
            raise MLServerError(f"variant {label!r} has no arm Model in this artifact", 500)
        base = self.arm_urls.get(label, self.mesh_url)
        headers = {"authorization": f"Bearer {self.token}", "seldon-model": model}
        return f"{base}/v2/models/{model}/infer", headers

    async def forward(self, label: str, body: V2Body) -> V2Body:
        """Send a V2 request body to arm `label`; its V2 response body."""
        parameters = body.get("parameters") or {}
        if parameters.get(FORWARDED_FROM):
            raise MLServerError(
                f"arm {self.own_arm!r} received a request forwarded by arm "
                f"{parameters[FORWARDED_FROM]!r} for variant {label!r}: the arms disagree on "
                "the experiment (different definitions?)", 500)
        url, headers = self.target(label)
        forwarded = {**body, "parameters": {**parameters, FORWARDED_FROM: self.own_arm}}
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout, limits=httpx.Limits(
                max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS))
        try:
            response = await self._client.post(url, json=forwarded, headers=headers)
        except httpx.HTTPError as exc:
            raise MLServerError(f"arm {label!r} unreachable at {url}: "
                                f"{type(exc).__name__} {exc}", 503) from exc
        if response.status_code != 200:
            log.warning("arm %s answered %d: %s", label, response.status_code,
                        response.text[:300])
            raise MLServerError(f"arm {label!r} answered {response.status_code}", 503)
        answer: V2Body = response.json()
        return answer

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
