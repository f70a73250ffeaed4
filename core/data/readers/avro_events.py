"""Avro files of the streaming event layout, record `UserEvent`:
eventId, userId (nullable), sessionId, eventType (page_view|click|purchase|add_to_cart|search),
timestamp (long, epoch ms), properties (map of strings), context {userAgent, ip, platform,
referrer (nullable)}.

Read with fastavro (the writer's schema travels in the file, so files written by newer
producers with more fields still read). Mapping: `properties` keys the schema has a column
for (productId / product_id, price, category, brand, rating, query, source,
recommendationId / recommendation_id) become columns, every other key goes to `extra`;
`context.platform` is the device type. `context.userAgent` and `context.ip` are not stored
at all (docs/security.md: the lake keeps no network identifiers), nor any other key
naming an IP address or a user agent, at any depth (recsys.core.data.personal_data); how many
events carried them in `context` is logged. A null userId is an anonymous visitor, kept
under a per-session id (recsys.core.data.visitors).
"""
from __future__ import annotations

import logging
from pathlib import Path

import fastavro
import orjson
import pandas as pd

from recsys.core.data.columns import Columns
from recsys.core.data.personal_data import without_personal_data
from recsys.core.data.readers.base import (
    MAX_EPOCH_MS,
    ReadResult,
    finish,
    map_event_types,
    open_text,
)
from recsys.core.data.schema import MAX_EXTRA_BYTES
from recsys.core.data.visitors import anonymous_user_id
from recsys.core.errors import SchemaError

log = logging.getLogger(__name__)
C = Columns
NAME = "avro"
MAGIC = b"Obj\x01"

PROPERTY_COLUMNS: dict[str, str] = {
    "productId": C.item_id, "product_id": C.item_id, "price": C.price,
    "category": C.category, "brand": C.brand, "rating": C.rating, "query": C.query,
    "source": C.source, "recommendationId": C.recommendation_id,
    "recommendation_id": C.recommendation_id,
}
TOP_LEVEL = {"eventId", "userId", "sessionId", "eventType", "timestamp", "properties",
             "context"}
CONTEXT_COLUMNS = {"platform": C.device_type, "referrer": C.referrer}
NOT_STORED = ("userAgent", "ip")


def is_avro(path: Path) -> bool:
    with open_text(path) as handle:
        return handle.read(4) == MAGIC


def read(path: Path) -> ReadResult:
    rows, rejects = [], []
    not_stored = 0
    number = 0
    with open_text(path) as handle:
        try:  # a broken header or block fails the read, naming where: never a partial read
            for number, record in enumerate(fastavro.reader(handle)):
                if not isinstance(record, dict):
                    rejects.append((str(record)[:500], f"record {number}: not a record"))
                    continue
                row, dropped = _row(record)
                not_stored += dropped
                rows.append(row)
        except Exception as exc:  # fastavro raises ValueError, KeyError, EOFError, ...
            raise SchemaError(f"{path}: not a readable Avro object container file (at "
                              f"record {number}): {type(exc).__name__}: {exc}") from exc
    if not_stored:
        log.info("%s: context.userAgent / context.ip of %d event(s) not stored (the lake keeps "
                 "no network identifiers)", path, not_stored)
    frame = pd.DataFrame(rows, columns=[C.event_id, C.user_id, C.session_id, C.event_type,
                                        C.timestamp, *dict.fromkeys(PROPERTY_COLUMNS.values()),
                                        C.device_type, C.referrer, C.extra, C.parse_error])
    raw_ts = frame[C.timestamp].copy()
    millis = pd.to_numeric(frame[C.timestamp], errors="coerce")
    millis = millis.where(millis.abs() < MAX_EPOCH_MS)  # beyond pandas' range: not a time
    frame[C.timestamp] = pd.to_datetime(millis, unit="ms", utc=True, errors="coerce").astype(
        "datetime64[ms, UTC]")
    frame[C.event_type] = map_event_types(frame[C.event_type].astype(object))
    reject_frame = pd.DataFrame(rejects, columns=[C.raw, C.reason])
    return ReadResult(finish(frame, f"{NAME} {path}", NAME, raw_ts), reject_frame)


def _row(record: dict) -> tuple[dict, int]:
    row = {C.event_id: record.get("eventId"), C.session_id: record.get("sessionId"),
           C.event_type: record.get("eventType"), C.timestamp: record.get("timestamp")}
    user = record.get("userId")
    row[C.user_id] = user if user not in (None, "") else anonymous_user_id(row[C.session_id])
    extra: dict = {k: v for k, v in record.items() if k not in TOP_LEVEL and v is not None}
    properties = record.get("properties") or {}
    unknown = {}
    for key, value in properties.items():
        column = PROPERTY_COLUMNS.get(key)
        if column is None:
            unknown[key] = value
        elif row.get(column) is None:
            row[column] = value
    if unknown:
        extra["properties"] = unknown
    context = record.get("context") or {}
    for key, column in CONTEXT_COLUMNS.items():
        row[column] = context.get(key)
    more = {k: v for k, v in context.items()
            if k not in CONTEXT_COLUMNS and k not in NOT_STORED and v is not None}
    if more:
        extra["context"] = more
    dropped = int(any(context.get(k) is not None for k in NOT_STORED))
    extra = without_personal_data(extra)  # also under other names and deeper down
    if extra:
        text = orjson.dumps(extra, option=orjson.OPT_SORT_KEYS, default=str).decode()
        if len(text) > MAX_EXTRA_BYTES:
            row[C.parse_error] = (f"fields beyond the schema take {len(text)} bytes as JSON; "
                                  f"at most {MAX_EXTRA_BYTES} are kept")
        else:
            row[C.extra] = text
    return row, dropped
