"""`/health` and `/metrics` of a stream worker run as a process of its own (`recsys stream
processor|sink|quarantine --metrics-port PORT`, one pod of a StatefulSet on a cluster).

- `GET /health`: 200 while the worker's bus reads keep coming (the last one less than
  `stale_seconds` ago; a read blocks at most `block_ms`), else 503: a worker stuck in a
  write is restarted by the liveness probe, not left holding its partitions. Open, like
  the collector's: it says nothing but alive or not.
- `GET /metrics`: the worker's own families (events, batch or flush time, freshness) and
  its group's lag, for Prometheus with a metrics token (`Authorization: Bearer`), 401
  without one.
"""
from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool

from recsys.core.online.bearer_keys import BearerKeys
from recsys.core.online.http_limits import uvicorn_head_limits
from recsys.core.settings import Settings
from recsys.streaming.bus import GroupReader
from recsys.streaming.metrics import StreamMetrics, StreamSources


def create_worker_app(name: str, reader: GroupReader, sources: StreamSources,
                      metrics_keys: BearerKeys, stale_seconds: float = 120.0) -> FastAPI:
    app = FastAPI(title=f"recsys stream {name}", docs_url=None, redoc_url=None,
                  openapi_url=None)
    registry = CollectorRegistry()
    registry.register(StreamMetrics(sources))

    @app.get("/health")
    async def health():
        quiet = time.monotonic() - reader.last_read
        alive = quiet < stale_seconds
        body = {"worker": name, "group": reader.group, "consumer": reader.consumer,
                "seconds_since_last_read": round(quiet, 3), "alive": alive}
        return JSONResponse(body, status_code=200 if alive else 503)

    @app.get("/metrics")
    async def metrics(request: Request):
        if metrics_keys.matching(request.headers.get("authorization")) is None:
            return JSONResponse({"error": "a metrics token is required: Authorization: "
                                          "Bearer <token>"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return app


def serve_in_background(app: FastAPI, host: str, port: int,
                        settings: Settings | None = None) -> uvicorn.Server:
    """Run `app` on a daemon thread (the worker loop keeps the main thread); returns the
    server once it listens. Request heads are capped in size and time
    (`recsys.core.online.http_limits`, from `settings` or the defaults)."""
    limits = uvicorn_head_limits(settings or Settings())
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           access_log=False, **limits))
    thread = threading.Thread(target=server.run, name="worker-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the worker's HTTP server did not start on {host}:{port}")
        time.sleep(0.02)
    return server
