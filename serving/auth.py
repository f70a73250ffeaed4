"""Who may call serving: service tokens on inference routes, admin tokens on the model
repository API (off by default), on REST and gRPC alike.

- Open: liveness and readiness (`/v2/health/*`, `/v2/models/<m>[/versions/<v>]/ready`; gRPC
  ServerLive, ServerReady, ModelReady) - what Kubernetes probes call.
- Repository API (`/v2/repository/*`; on gRPC every `Repository*` method, on whichever
  service carries it: MLServer 1.7 serves `RepositoryIndex`, `RepositoryModelLoad` and
  `RepositoryModelUnload` on `GRPCInferenceService` as well as on `ModelRepositoryService`):
  404 / UNIMPLEMENTED unless `RECSYS_SERVING_REPOSITORY_API` is on; then an admin token.
- `/recsys/metrics`: a metrics token (what Prometheus holds) or a service token.
- Everything else (inference, metadata, `/recommend`, `/similar`, `/recsys/status`, docs):
  a service token (an admin token is accepted too).

Tokens are `Authorization: Bearer <token>` (REST header, gRPC metadata `authorization`),
from `RECSYS_SERVING_TOKEN[_FILE]` / `RECSYS_SERVING_ADMIN_TOKEN[_FILE]`, or on the
embedded default generated under `<state>/secrets/` (`recsys.core.online.bearer_keys`).
"""
from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc

from recsys.core.online.bearer_keys import BearerKeys, metrics_keys, surface_keys
from recsys.core.settings import Settings

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

SERVICE_TOKEN_FILE = "serving_token"
ADMIN_TOKEN_FILE = "serving_admin_token"
OPEN, SERVICE, ADMIN, DISABLED, METRICS = "open", "service", "admin", "disabled", "metrics"
METRICS_PATH = "/recsys/metrics"
_OPEN_PATHS = re.compile(r"^/v2/health/(live|ready)$|^/v2/models/[^/]+(/versions/[^/]+)?/ready$")
_OPEN_RPCS = {"/inference.GRPCInferenceService/ServerLive",
              "/inference.GRPCInferenceService/ServerReady",
              "/inference.GRPCInferenceService/ModelReady"}
_REPOSITORY_RPC_PREFIX = "/inference.model_repository.ModelRepositoryService/"
_REPOSITORY_METHOD_PREFIX = "Repository"
"""A gRPC method named `Repository...` administers models whatever service it is on."""


@dataclass(frozen=True)
class ServingAccess:
    service: BearerKeys
    admin: BearerKeys | None
    """None when the repository API is off."""
    metrics: BearerKeys | None = None
    """Prometheus' tokens: `/recsys/metrics` only (a service token works there too)."""

    def route_kind(self, path: str) -> str:
        if _OPEN_PATHS.match(path):
            return OPEN
        if path == METRICS_PATH:
            return METRICS
        if path == "/v2/repository" or path.startswith("/v2/repository/"):
            return ADMIN if self.admin is not None else DISABLED
        return SERVICE

    def rpc_kind(self, method: str) -> str:
        if method in _OPEN_RPCS:
            return OPEN
        if method.startswith(_REPOSITORY_RPC_PREFIX) or \
                method.rsplit("/", 1)[-1].startswith(_REPOSITORY_METHOD_PREFIX):
            return ADMIN if self.admin is not None else DISABLED
        return SERVICE

    def allows(self, kind: str, authorization: str | None) -> bool:
        if kind == OPEN:
            return True
        if kind == DISABLED:
            return False
        is_admin = self.admin is not None and self.admin.matching(authorization) is not None
        if kind == ADMIN:
            return is_admin
        if kind == METRICS and self.metrics is not None and \
                self.metrics.matching(authorization) is not None:
            return True
        return is_admin or self.service.matching(authorization) is not None


def serving_access(settings: Settings) -> ServingAccess:
    service = surface_keys(settings.serving_token, settings.serving_token_file,
                           settings.state_dir, SERVICE_TOKEN_FILE,
                           "serving's tokens (RECSYS_SERVING_TOKEN or RECSYS_SERVING_TOKEN_FILE)")
    admin = None
    if settings.serving_repository_api:
        admin = surface_keys(settings.serving_admin_token, settings.serving_admin_token_file,
                             settings.state_dir, ADMIN_TOKEN_FILE,
                             "serving's admin tokens (RECSYS_SERVING_ADMIN_TOKEN or "
                             "RECSYS_SERVING_ADMIN_TOKEN_FILE)")
    return ServingAccess(service, admin, metrics_keys(
        settings.metrics_token, settings.metrics_token_file, settings.state_dir))


class TokenMiddleware:
    """ASGI: 401 (or 404 for the disabled repository API) before the app sees a request."""

    def __init__(self, app: ASGIApp, access: ServingAccess) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        kind = self.access.route_kind(scope.get("path", ""))
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        if self.access.allows(kind, authorization):
            return await self.app(scope, receive, send)
        if kind == DISABLED:
            return await _answer(send, 404, "the model repository API is off "
                                            "(RECSYS_SERVING_REPOSITORY_API)")
        need = "an admin token" if kind == ADMIN else "a service token"
        return await _answer(send, 401, f"{need} is required: Authorization: Bearer <token>",
                             [(b"www-authenticate", b'Bearer realm="recsys"')])


async def _answer(send: Send, status: int, message: str,
                  extra: Iterable[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body})


class TokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]  # grpc: no hints
    """gRPC: UNAUTHENTICATED (or UNIMPLEMENTED for the disabled repository API) before the
    servicer runs."""

    def __init__(self, access: ServingAccess) -> None:
        self.access = access

    async def intercept_service(
            self, continuation: Callable[[grpc.HandlerCallDetails],
                                         Awaitable[grpc.RpcMethodHandler | None]],
            handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        kind = self.access.rpc_kind(handler_call_details.method)
        metadata = dict(handler_call_details.invocation_metadata or ())
        authorization = metadata.get("authorization")
        handler = await continuation(handler_call_details)
        if handler is None or self.access.allows(kind, authorization):
            return handler
        if kind == DISABLED:
            return _refusing(handler, grpc.StatusCode.UNIMPLEMENTED,
                             "the model repository API is off (RECSYS_SERVING_REPOSITORY_API)")
        need = "an admin token" if kind == ADMIN else "a service token"
        return _refusing(handler, grpc.StatusCode.UNAUTHENTICATED,
                         f"{need} is required: metadata authorization: Bearer <token>")


def _refusing(handler: grpc.RpcMethodHandler, code: grpc.StatusCode,
              message: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that aborts with `code`."""
    async def abort(request: object, context: grpc.aio.ServicerContext) -> None:
        await context.abort(code, message)

    async def abort_stream(request: object,
                           context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        await context.abort(code, message)
        yield  # never reached: makes this an async generator, as streaming handlers are

    serializers = {"request_deserializer": handler.request_deserializer,
                   "response_serializer": handler.response_serializer}
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(abort, **serializers)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(abort_stream, **serializers)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(abort, **serializers)
    return grpc.stream_stream_rpc_method_handler(abort_stream, **serializers)
