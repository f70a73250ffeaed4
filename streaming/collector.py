"""The collector: `POST /events` from the shop's front end onto the bus.

- Access: a write key (`Authorization: Bearer <key>`, 401 without one), browser posts only
  from the allowed shop origins (CORS), and events a second per key and per client address,
  one token per event (a batch over the budget: 429 with `Retry-After` and nothing of it
  stored); see streaming/access.py.
- The beacon form, `POST /events/beacon?key=<write key>` (what `navigator.sendBeacon` and
  the browser SDK in sdk/js/ send): the write key in the URL, a `text/plain` body (no CORS
  preflight), and a browser's `Origin` one of the allowed shop origins (403 otherwise: a
  page of another site cannot make its visitors post). After the key and the origin, the
  same code as `POST /events` (limits, rates, parsing, validation, answers).
- Body: one event, a JSON array, or NDJSON (`Content-Type: application/x-ndjson`), in the
  rich format (streaming/events.py).
- All valid -> 202 {accepted, duplicates, rejected: 0}. Some invalid -> 422 with per-event
  errors (index, event_id, field, message); the valid ones of the batch are stored and
  counted in `accepted`, the invalid ones go to the dead-letter stream with the reason.
- Bus unreachable, full or not durable -> 503 with `Retry-After` and `"stored": 0`: nothing
  of the request is stored (the publish is one atomic script). Bus too slow (socket
  timeout) or the connection lost mid-call -> 503 with `"stored": "unknown"`: the events
  may be stored. Either way a retry with the same event ids is safe: ids seen within the
  dedup window are accepted once (`duplicates`).
- Limits: body above `max_body_bytes` or more than `max_batch` events -> 413 naming the limit.
- Event time: more than `max_event_ahead_seconds` ahead of receipt, or older than
  `max_event_age_days`, is refused like any invalid field (422, dead-lettered with the
  reason), so one bad clock cannot move the processor's watermark.
- Start it through `runtime.build_collector_bus`: it refuses a Redis that would lose what
  the collector acknowledges (`streaming/durability.py`).
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool

from recsys.core.data.columns import Columns as C
from recsys.core.online.bearer_keys import BearerKeys
from recsys.streaming.access import EventBudgets, RateLimiter, foreign_origin, key_in_url
from recsys.streaming.bus import BusOutcomeUnknown, BusUnavailable, EventBus
from recsys.streaming.events import BodyError, TimeBounds, parse_body, validate_events
from recsys.streaming.health import health_report
from recsys.streaming.metrics import StreamMetrics, StreamSources
from recsys.streaming.user_binding import NO_BINDING, UserBinding

log = logging.getLogger(__name__)
MAX_FIELD_LABELS = 50
"""Distinct field labels of the rejected-events metric (the rest count as "(other)")."""


JSON_TYPES = frozenset({"application/json", "application/x-ndjson", "application/ndjson",
                        "application/jsonl", "application/x-jsonlines"})
"""Media types `POST /events` reads. A browser sends `text/plain` across sites without a
CORS preflight; refusing it (415) is what stops a page on another site from posting."""
BEACON_PATH = "/events/beacon"
BEACON_TYPES = JSON_TYPES | {"text/plain"}
"""Media types the beacon path reads: `text/plain` is what `navigator.sendBeacon` sends for
a string (the body is the same JSON or NDJSON); there the `Origin` check stands in for the
415 of `POST /events`."""


@dataclass
class CollectorLimits:
    max_body_bytes: int = 1_048_576
    max_batch: int = 1000
    retry_after_seconds: int = 5
    max_event_ahead_seconds: int = 300
    """Clock skew allowed: an event time further ahead of receipt is refused (422)."""
    max_event_age_days: float | None = 7.0
    """Older event times are refused (422); None takes any age (a replay of history)."""

    def time_bounds(self, received_ms: int) -> TimeBounds:
        age = None if self.max_event_age_days is None \
            else int(self.max_event_age_days * 86_400_000)
        return TimeBounds(received_ms, self.max_event_ahead_seconds * 1000, age)


@dataclass
class CollectorCounters:
    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    unavailable: int = 0
    unauthorized: int = 0
    rate_limited: int = 0
    anonymized: int = 0
    rejected_by_field: dict[str, int] = field(default_factory=dict)
    """Refused events by the first field at fault (bounded: the event model's fields)."""
    valid_by_type: dict[str, int] = field(default_factory=dict)
    """Valid events by canonical event type (bounded: the EventType values); a retried
    request's duplicates are counted again: the business dashboard's rates, not a ledger."""


@dataclass
class CollectorAccess:
    """Who may post: write keys (required), browser origins (CORS), events a second per key
    and per client address."""

    write_keys: BearerKeys
    allowed_origins: tuple[str, ...] = ()
    rate_per_second: float = 2_000.0
    """Events a second one write key may send (all the shop's visitors together)."""
    client_rate_per_second: float = 100.0
    """Events a second one client address may send, well below the key's."""
    burst_seconds: float = 5.0
    binding: UserBinding = NO_BINDING
    """Whether events must carry the shop backend's signature of their user id."""
    metrics_keys: BearerKeys | None = None
    """Who may scrape `GET /metrics` (Prometheus); None: no metrics route."""

    def budgets(self) -> EventBudgets:
        return EventBudgets(
            RateLimiter(self.rate_per_second, self.rate_per_second * self.burst_seconds,
                        max_names=1_000),
            RateLimiter(self.client_rate_per_second,
                        self.client_rate_per_second * self.burst_seconds, max_names=100_000))


def create_app(bus: EventBus, access: CollectorAccess, limits: CollectorLimits | None = None,
               workers: Callable[[], tuple[bool, dict]] | None = None,
               observed: StreamSources | None = None) -> FastAPI:
    """`workers`, when the stream workers run in this process (`recsys stream up`): their
    health and status (liveness, restarts, lag per group) for `/health`. `observed`: the
    consumer groups and worker stats `/metrics` reports besides the collector's own."""
    limits = limits or CollectorLimits()
    counters = CollectorCounters()
    budgets = access.budgets()
    app = FastAPI(title="recsys event collector", version="1", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.counters = counters
    if access.allowed_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(access.allowed_origins),
                           allow_methods=["POST"], allow_headers=["Authorization",
                                                                  "Content-Type"],
                           expose_headers=["Retry-After"], max_age=600)

    def unavailable(exc: BusUnavailable) -> JSONResponse:
        counters.unavailable += 1
        log.warning("collector: 503, %s", exc)
        body: dict = {"error": str(exc), "stored": 0}
        if isinstance(exc, BusOutcomeUnknown):  # sent, unanswered: maybe stored
            body = {"error": str(exc), "stored": "unknown",
                    "retry": "send the same events again with the same event_id: each is "
                             "kept once downstream (on Redis those already stored are "
                             "counted as duplicates; on Kafka a resend may be a second copy "
                             "on the topic, which the lake sink and the processor drop)"}
        return JSONResponse(body, status_code=503,
                            headers={"Retry-After": str(limits.retry_after_seconds)})

    def too_large(message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=413)

    def rate_limited(wait: float) -> JSONResponse:
        counters.rate_limited += 1
        return JSONResponse({"error": "rate limit: too many events; nothing of this request "
                                      "was stored, send it again after Retry-After",
                             "stored": 0}, status_code=429,
                            headers={"Retry-After": str(max(1, math.ceil(wait)))})

    def unauthorized(message: str, status: int = 401) -> JSONResponse:
        counters.unauthorized += 1
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.post("/events")
    async def collect(request: Request):
        counters.requests += 1
        key = access.write_keys.matching(request.headers.get("authorization"))
        if key is None:
            return unauthorized("a write key is required: Authorization: Bearer <key>")
        return await take_events(request, key, JSON_TYPES)

    @app.post(BEACON_PATH)
    async def collect_beacon(request: Request):
        counters.requests += 1
        key = key_in_url(access.write_keys, request.query_params.get("key"))
        if key is None:
            return unauthorized(f"a write key is required: {BEACON_PATH}?key=<write key>")
        origin = request.headers.get("origin")
        if origin is not None and foreign_origin(origin, access.allowed_origins):
            return unauthorized(f"origin {origin[:200]!r} is not one of the collector's "
                                f"allowed origins (RECSYS_COLLECTOR_ALLOWED_ORIGINS)", 403)
        return await take_events(request, key, BEACON_TYPES)

    async def take_events(request: Request, key: str, media_types: frozenset[str]):
        """A request whose write key was accepted: rates, limits, body, validation, bus."""
        client = request.client.host if request.client else "unknown"
        if (wait := budgets.wait(key, client)) > 0:  # an empty bucket: the body is not read
            return rate_limited(wait)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_body_bytes:
            return too_large(f"body is {declared} bytes; the limit (max_body_bytes) is "
                             f"{limits.max_body_bytes}")
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limits.max_body_bytes:
                return too_large(f"body exceeds the limit (max_body_bytes) of "
                                 f"{limits.max_body_bytes} bytes")
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() not in media_types:
            return JSONResponse({"error": f"Content-Type {content_type or '(none)'!r} is not "
                                          f"accepted; send one of {sorted(media_types)}",
                                 "field": "Content-Type"}, status_code=415)
        try:
            events = parse_body(bytes(body), content_type)
        except BodyError as exc:
            return JSONResponse({"error": str(exc), "field": "body"}, status_code=400)
        if len(events) > limits.max_batch:
            return too_large(f"{len(events)} events in one request; the limit (max_batch) is "
                             f"{limits.max_batch}")
        if (wait := budgets.take(key, client, len(events))) == math.inf:
            return too_large(f"{len(events)} events in one request; the rate limits take at "
                             f"most {budgets.largest_batch} at once ({access.burst_seconds:g} "
                             f"s of collector_client_rate_per_second or of "
                             f"collector_rate_per_second): send smaller batches")
        if wait > 0:  # the whole batch, so that it is sent again with the same event ids
            return rate_limited(wait)
        now = int(time.time() * 1000)
        checked = validate_events(events, limits.time_bounds(now), access.binding)
        try:
            if checked.rejected:
                await run_in_threadpool(bus.dead_letter, [
                    {"reason": r.reason, "errors": r.errors, "raw": r.raw,
                     "received_at": now} for r in checked.rejected])
            published = await run_in_threadpool(bus.publish, checked.rows)
        except BusUnavailable as exc:
            budgets.give_back(key, client, len(events))
            return unavailable(exc)
        counters.accepted += published.accepted
        counters.duplicates += published.duplicates
        by_type = counters.valid_by_type
        for row in checked.rows:
            kind = row[C.event_type]
            by_type[kind] = by_type.get(kind, 0) + 1
        counters.rejected += len(checked.rejected)
        for refused in checked.rejected:
            name = refused.errors[0]["field"] if refused.errors else "(event)"
            if name not in counters.rejected_by_field and \
                    len(counters.rejected_by_field) >= MAX_FIELD_LABELS:
                name = "(other)"
            counters.rejected_by_field[name] = counters.rejected_by_field.get(name, 0) + 1
        counters.anonymized += checked.anonymized
        payload: dict[str, object] = {"accepted": published.accepted,
                                      "duplicates": published.duplicates,
                                      "rejected": len(checked.rejected)}
        if checked.anonymized:
            payload["anonymized"] = checked.anonymized
        if checked.rejected:
            payload["errors"] = [r.as_dict() for r in checked.rejected]
            return JSONResponse(payload, status_code=422)
        return JSONResponse(payload, status_code=202)

    @app.get("/live")
    async def live():
        # liveness: the process answers. Never the bus: a Redis outage must not make the
        # kubelet restart every collector (readiness is /health)
        return JSONResponse({"status": "alive"})

    @app.get("/health")
    async def health():
        body = await run_in_threadpool(health_report, bus, workers)
        return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)

    tokens = access.metrics_keys
    if tokens is not None:
        sources = replace(observed or StreamSources(None, bus, ()), counters=counters)
        registry = CollectorRegistry()
        registry.register(StreamMetrics(sources))

        def no_token(request: Request) -> JSONResponse | None:
            if tokens.matching(request.headers.get("authorization")) is None:
                return JSONResponse({"error": "a metrics token is required: Authorization: "
                                              "Bearer <token>"}, status_code=401,
                                    headers={"WWW-Authenticate": "Bearer"})
            return None

        @app.get("/metrics")
        async def metrics(request: Request):
            if refused := no_token(request):
                return refused
            body = await run_in_threadpool(generate_latest, registry)
            return Response(body, media_type=CONTENT_TYPE_LATEST)

        @app.get("/stats")
        async def stats(request: Request):
            """The collector's counters as JSON (business figures: same token as /metrics)."""
            return no_token(request) or JSONResponse(counters.__dict__)

    return app
