"""Diginetica (CIKM Cup 2016) item views: `;`-separated session_id, user_id (often "NA"),
item_id, timeframe (milliseconds since the session's start), eventdate (the session's day).

The standard session benchmark. Every row is a view; the timestamp is the day plus the
timeframe (what the published preprocessing of SR-GNN and its successors orders by). A
missing user is an anonymous visitor kept under `anonymous:<hash of the session>`.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from recsys.core.data.columns import Columns, EventType
from recsys.core.data.readers.base import (
    MAX_EPOCH_MS,
    ReadResult,
    finish,
    read_csv_strings,
    synthesize_event_ids,
)
from recsys.core.data.visitors import anonymous_user_id

C = Columns
NAME = "diginetica"
MARKER_COLUMNS = {"session_id", "item_id", "timeframe", "eventdate"}
MISSING_USER = {"", "NA"}


def read(path: Path) -> ReadResult:
    raw, rejects = read_csv_strings(path, delimiter=";")
    frame = pd.DataFrame(index=raw.index)
    frame[C.session_id] = NAME + "_" + raw["session_id"]
    users = raw["user_id"] if "user_id" in raw.columns else pd.Series(None, index=raw.index)
    anonymous = users.isna() | users.isin(MISSING_USER)
    # no user and no session: no one to keep it under (validate refuses it, missing user_id)
    visitors = frame[C.session_id].map(anonymous_user_id, na_action="ignore")
    frame[C.user_id] = users.where(~anonymous, visitors)
    frame[C.item_id] = raw["item_id"]
    frame[C.event_type] = EventType.view.value
    frame[C.timestamp] = _day_plus_offset(raw["eventdate"], raw["timeframe"])
    frame[C.event_id] = synthesize_event_ids(raw, NAME, ["session_id", "item_id", "timeframe"])
    raw_time = raw["eventdate"].fillna("") + " +" + raw["timeframe"].fillna("") + "ms"
    return ReadResult(finish(frame, f"{NAME} {path}", NAME, raw_time), rejects)


def _day_plus_offset(days: pd.Series, offsets: pd.Series) -> pd.Series:
    """The day plus the offset in milliseconds, computed in whole milliseconds so that no
    value (an infinite or huge offset, a day at the end of pandas' range) can overflow: a
    sum beyond the representable range is not a time."""
    day = pd.to_datetime(days, format="%Y-%m-%d", utc=True, errors="coerce")
    day_ms = (day - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "ms")
    millis = day_ms + pd.to_numeric(offsets, errors="coerce")
    millis = millis.where(millis.abs() < MAX_EPOCH_MS).round().astype("Int64")
    return pd.to_datetime(millis, unit="ms", utc=True).astype("datetime64[ms, UTC]")
