"""`python -m recsys.serving.server start <model repository>`: MLServer, locked down.

MLServer gives runtimes no hook on its servers, so this entry point adds to the ones it
builds, then runs MLServer's own CLI unchanged:

- REST: TokenMiddleware (service / admin tokens, `recsys.serving.auth`) and
  BodyLimitMiddleware (`RECSYS_MAX_BODY_BYTES`, 413 above it);
- gRPC: TokenInterceptor (the same tokens as `authorization` metadata), the same body
  limit as the largest message it receives and at most GRPC_MAX_CONCURRENT_STREAMS (100)
  concurrent streams per connection;
- REST and metrics ports: a cap on the size and the time of each request head
  (`recsys.core.online.http_limits`; MLServer's uvicorn would read an endless header), given to
  uvicorn through MLServer's own hook for uvicorn options, the settings'
  `_custom_rest_server_settings` / `_custom_metrics_server_settings` (set on the settings
  MLServer's CLI loads; MLServer logs "REST custom configuration is out of support" when
  they are set);
- `GET /recsys/openapi.json`: the OpenAPI document of the plain REST routes
  (`recsys.serving.openapi`), behind the service token like them;
- MLServer's metrics port (8082): a metrics token, like `/recsys/metrics` (a service
  token works too); without one, 401 and no series;
- binds 127.0.0.1 unless `MLSERVER_HOST` says otherwise (the container image sets 0.0.0.0);
- answers uncompressed unless `MLSERVER_GZIP_ENABLED` says otherwise: MLServer gzips every
  REST answer over 500 bytes for a client that accepts it, and a recommendation list is
  ~600 bytes of JSON; compressing it costs more CPU than the bytes it saves are worth;
- hands the GIL over every `SWITCH_INTERVAL_SECONDS` (1 ms) instead of CPython's 5 ms.
  Requests run on the event loop's thread; background threads (the request log's Parquet
  writes, the cache writer, the champion, rules and experiment pollers) hold the GIL in
  pure-Python or C stretches, and each time the loop thread releases it for I/O it would
  otherwise wait up to 5 ms to get it back, several times a request (docs/serving.md has
  the measured figures).

Checked against MLServer 1.7 (the version the project pins), which builds its gRPC server
through `mlserver.grpc.server.aio.server(...)`. In a cluster the body limit belongs in the
ingress as well.
"""
from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import grpc
import mlserver
import mlserver.grpc.server as grpc_server
import mlserver.metrics.server as metrics_server
import mlserver.rest.server as rest_server
from mlserver.cli.main import main as mlserver_main

from recsys.core.errors import ConfigError
from recsys.core.online.http_limits import HeadLimits, head_limited_protocol
from recsys.core.settings import load_settings
from recsys.serving.auth import (
    METRICS,
    ServingAccess,
    TokenInterceptor,
    TokenMiddleware,
    serving_access,
)
from recsys.serving.body_limit import BodyLimitMiddleware
from recsys.serving.openapi import OPENAPI_PATH, serving_document
from recsys.serving.readiness import install as install_readiness

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from mlserver.settings import ModelSettings
    from mlserver.settings import Settings as MLServerSettings

    LoadedSettings = tuple[MLServerSettings, list[ModelSettings]]

# `import mlserver.cli.main` would give the function `main` that `mlserver.cli` exports
mlserver_cli = importlib.import_module("mlserver.cli.main")
SUPPORTED_MLSERVER = "1.7."
DEFAULT_HOST = "127.0.0.1"
SWITCH_INTERVAL_SECONDS = 0.001
# HTTP/2 streams one gRPC connection may have open at once: a client holding more idle calls
# waits on its own connection (gRPC's default is no cap)
GRPC_MAX_CONCURRENT_STREAMS = 100


def _locked_rest(create_app: Callable[..., FastAPI], access: ServingAccess,
                 max_bytes: int) -> Callable[..., FastAPI]:
    def create(*args: Any, **kwargs: Any) -> FastAPI:
        app = create_app(*args, **kwargs)
        app.add_api_route(OPENAPI_PATH, _openapi, methods=["GET"], include_in_schema=False)
        app.add_middleware(BodyLimitMiddleware, max_bytes=max_bytes)
        app.add_middleware(TokenMiddleware, access=access)  # outermost: checked first
        return app
    return create


async def _openapi() -> JSONResponse:
    """The plain REST routes' OpenAPI document (`serving/openapi.py`; service token)."""
    from fastapi.responses import JSONResponse

    return JSONResponse(serving_document())


class _MetricsPortAccess(ServingAccess):
    """Every path of MLServer's metrics port is a metrics route."""

    def route_kind(self, path: str) -> str:
        return METRICS


def _locked_metrics(get_app: Callable[[metrics_server.MetricsServer], FastAPI],
                    access: ServingAccess) -> Callable[[metrics_server.MetricsServer], FastAPI]:
    def get_app_locked(self: metrics_server.MetricsServer) -> FastAPI:
        app = get_app(self)
        app.add_middleware(TokenMiddleware, access=_MetricsPortAccess(
            access.service, access.admin, access.metrics))
        return app
    return get_app_locked


def _head_limited(load_settings_of_cli: Callable[..., Awaitable[LoadedSettings]],
                  limits: HeadLimits) -> Callable[..., Awaitable[LoadedSettings]]:
    """MLServer's CLI settings loader, the settings given the uvicorn head limits."""
    async def load(*args: Any, **kwargs: Any) -> LoadedSettings:
        settings, models = await load_settings_of_cli(*args, **kwargs)
        options = {"http": head_limited_protocol(limits)}
        settings._custom_rest_server_settings = {
            **(settings._custom_rest_server_settings or {}), **options}
        settings._custom_metrics_server_settings = {
            **(settings._custom_metrics_server_settings or {}), **options}
        return settings, models
    return load


class _LockedGrpc:
    """Stands in for `grpc.aio` inside MLServer's gRPC module: servers it builds get the
    token interceptor first, a receive limit of `max_bytes` and a cap of
    GRPC_MAX_CONCURRENT_STREAMS streams per connection."""

    def __init__(self, access: ServingAccess, max_bytes: int) -> None:
        self._interceptor = TokenInterceptor(access)
        self._max_bytes = max_bytes

    def __getattr__(self, name: str) -> Any:  # the rest of `grpc.aio`, whatever it is
        return getattr(grpc.aio, name)

    def server(self, *args: Any, interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
               options: Sequence[tuple[str, Any]] = (), **kwargs: Any) -> grpc.aio.Server:
        limits = {"grpc.max_receive_message_length": self._max_bytes,
                  "grpc.max_concurrent_streams": GRPC_MAX_CONCURRENT_STREAMS}
        kept = [(k, v) for k, v in options if k not in limits and k != "grpc.max_message_length"]
        return grpc.aio.server(*args, interceptors=[self._interceptor, *interceptors],
                               options=kept + list(limits.items()), **kwargs)


def install(access: ServingAccess, max_bytes: int, head_limits: HeadLimits = HeadLimits()
            ) -> None:
    """Patch MLServer's REST app factory, metrics app, gRPC server builder and the settings
    its CLI loads (MLServer 1.7 only)."""
    if not mlserver.__version__.startswith(SUPPORTED_MLSERVER):
        raise ConfigError(f"recsys serving is checked against MLServer {SUPPORTED_MLSERVER}x, "
                          f"found {mlserver.__version__}: its auth and limits would not apply")
    rest_server.create_app = _locked_rest(rest_server.create_app, access, max_bytes)
    grpc_server.aio = _LockedGrpc(access, max_bytes)
    install_readiness()  # ready only while the models it started with are loaded
    metrics_server.MetricsServer._get_app = _locked_metrics(
        metrics_server.MetricsServer._get_app, access)
    # the module's own namespace: its functions look the loader up there when they run
    vars(mlserver_cli)["load_settings"] = _head_limited(mlserver_cli.load_settings,
                                                        head_limits)


def main() -> None:
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    settings = load_settings()
    os.environ.setdefault("MLSERVER_HOST", DEFAULT_HOST)
    os.environ.setdefault("MLSERVER_GZIP_ENABLED", "false")
    access = serving_access(settings)
    install(access, settings.max_body_bytes, HeadLimits(settings.http_max_header_bytes,
                                                        settings.http_header_timeout_seconds))
    print(usage(access, os.environ["MLSERVER_HOST"]), file=sys.stderr, flush=True)
    mlserver_main()


def usage(access: ServingAccess, host: str) -> str:
    """How to call this server (printed at start by `make serve`)."""
    token = f"$(cat {access.service.path})" if access.service.path else "$RECSYS_SERVING_TOKEN"
    repository = "on (admin token)" if access.admin else "off"
    return (f"serving on {host}: every route but health needs a service token, e.g.\n"
            f"  curl -H \"Authorization: Bearer {token}\" "
            f"http://{host}:8080/recommend/<user_id>\n"
            f"  gRPC: metadata authorization: Bearer <token>; repository API {repository}")


if __name__ == "__main__":
    main()
