"""The OpenAPI document of the collector's `POST /events` (and its beacon form, `POST
/events/beacon?key=`), generated from the code.

The request body is the rich event format's own pydantic model (`events.RichEvent`): one
event, a JSON array of at most `CollectorLimits.max_batch`, or NDJSON lines. The answers
are those `collector.py` writes: 202 (all stored), 422 (some refused, per-event errors, the
valid ones stored), 400, 401, 413, 415, 429 and 503 with `{"error": ...}`.
`docs/openapi/collector.json` holds it (`make docs`; a test checks it is current), the
collector answers it at `GET /openapi.json` (a write key or a metrics token: `add_route`,
called by `recsys stream collector|up`), and the schema fuzz test holds the running
collector to it.
"""
from __future__ import annotations

import functools
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from recsys.streaming.collector import (
    BEACON_PATH,
    BEACON_TYPES,
    JSON_TYPES,
    CollectorAccess,
    CollectorLimits,
)
from recsys.streaming.events import RichEvent

OPENAPI_PATH = "/openapi.json"


class EventError(BaseModel):
    field: str
    message: str


class RefusedEvent(BaseModel):
    index: int
    """Position of the event in the request."""
    event_id: str | None
    errors: list[EventError]


class Stored(BaseModel):
    """202: every event stored (a duplicate id within the dedup window counts once)."""

    model_config = ConfigDict(extra="forbid")
    accepted: int = Field(ge=0)
    duplicates: int = Field(ge=0)
    rejected: int = Field(ge=0)
    anonymized: int | None = Field(None, ge=1)
    """Events whose user id was replaced by an anonymous one (user binding `anonymous`)."""


class PartlyRefused(Stored):
    """422: some events refused (each named with its fields); the valid ones stored."""

    errors: list[RefusedEvent]


class CollectorError(BaseModel):
    """A refused request; nothing of it stored."""

    error: str
    field: str | None = None
    """The part of the request at fault (`body`, `Content-Type`), when one is."""
    stored: int | str | None = None
    """On 503: 0 (nothing stored, a retry is safe) or "unknown" (the bus did not answer:
    retry with the same event ids: each is kept once downstream)."""
    retry: str | None = None
    """How to retry, when `stored` is "unknown"."""


def _json(model: type[BaseModel], description: str, headers: dict | None = None) -> dict:
    answer = {"description": description, "content": {"application/json": {"schema": {
        "$ref": f"#/components/schemas/{model.__name__}"}}}}
    if headers:
        answer["headers"] = headers
    return answer


@functools.cache
def collector_document() -> dict:
    """The OpenAPI document (a dict, JSON-ready)."""
    limits = CollectorLimits()
    retry = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
    event = {"$ref": "#/components/schemas/RichEvent"}
    body = {"oneOf": [event, {"type": "array", "items": event, "minItems": 1,
                              "maxItems": limits.max_batch}]}
    content = {kind: {"schema": body if kind == "application/json" else {"type": "string"}}
               for kind in sorted(JSON_TYPES)}
    beacon_content = {kind: {"schema": body if kind == "application/json" else {
        "type": "string", "description": "the JSON or NDJSON body as text"}}
        for kind in sorted(BEACON_TYPES)}
    operation: dict[str, Any] = {
        "summary": "Send events",
        "description": "One event, a JSON array or NDJSON lines (one event a line), in the "
                       f"rich format. Bodies over {limits.max_body_bytes} bytes or batches "
                       f"over {limits.max_batch} events are refused (413); event times more "
                       f"than {limits.max_event_ahead_seconds} s ahead or older than the "
                       "collector's --max-event-age-days are refused like any bad field.",
        "operationId": "send_events",
        "requestBody": {"required": True, "content": content},
        "responses": {
            "202": _json(Stored, "All events stored"),
            "400": _json(CollectorError, "The body is not JSON / NDJSON"),
            "401": _json(CollectorError, "No write key, or not one of the collector's"),
            "413": _json(CollectorError, "Body or batch over the limit"),
            "415": _json(CollectorError, "Content-Type not JSON or NDJSON"),
            "422": _json(PartlyRefused, "Some events refused, the rest stored"),
            "429": _json(CollectorError, "Over the rate of the key or client", retry),
            "503": _json(CollectorError, "The event bus is down or full: nothing stored",
                         retry)}}
    beacon = {
        "summary": "Send events as a beacon",
        "description": "The beacon form of send_events, for `navigator.sendBeacon` and "
                       "`fetch` with `keepalive` from the shop's pages: the write key in the "
                       "URL (`key`), the same body sent as `text/plain` (no CORS preflight) "
                       "or a JSON media type. A request carrying an `Origin` header must come "
                       "from one of the collector's allowed origins (403 otherwise). Then "
                       "exactly the limits, validation and answers of send_events.",
        "operationId": "send_events_beacon",
        "parameters": [{"name": "key", "in": "query", "required": True,
                        "schema": {"type": "string"},
                        "description": "A write key (public: it only writes events)"}],
        "security": [{"beaconKey": []}],
        "requestBody": {"required": True, "content": beacon_content},
        "responses": {
            **operation["responses"],
            "401": _json(CollectorError, "No key in the URL, or not a write key"),
            "403": _json(CollectorError, "A browser's Origin that is not one of the shop's"),
            "415": _json(CollectorError, "Content-Type not text/plain, JSON or NDJSON")}}
    schemas = {}
    for model in (RichEvent, Stored, PartlyRefused, CollectorError):
        found = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(found.pop("$defs", {}))
        schemas[model.__name__] = found
    return {"openapi": "3.1.0",
            "info": {"title": "recsys event collector", "version": "1",
                     "description": "Click-stream events from the shop's front end onto the "
                                    "event bus. Needs a write key: Authorization: Bearer "
                                    "<key>, or `?key=<key>` on the beacon path."},
            "paths": {"/events": {"post": operation}, BEACON_PATH: {"post": beacon}},
            "components": {"schemas": schemas,
                           "securitySchemes": {"writeKey": {"type": "http",
                                                            "scheme": "bearer"},
                                               "beaconKey": {"type": "apiKey", "in": "query",
                                                             "name": "key"}}},
            "security": [{"writeKey": []}]}


def add_route(app: FastAPI, access: CollectorAccess) -> None:
    """`GET /openapi.json` on the collector's app: the document, for a write key or a
    metrics token (401 otherwise)."""

    @app.get(OPENAPI_PATH)
    async def openapi(request: Request):
        offered = request.headers.get("authorization")
        if access.write_keys.matching(offered) is None and (
                access.metrics_keys is None or access.metrics_keys.matching(offered) is None):
            return JSONResponse({"error": "a write key or a metrics token is required: "
                                          "Authorization: Bearer <key>"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        return JSONResponse(collector_document())
