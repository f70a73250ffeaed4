"""Diginetica (CIKM Cup 2016) item views: `;`-separated session_id, user_id (often "NA"),
item_id, timeframe (milliseconds since the session's start), eventdate (the session's day).

The standard session benchmark. Every row is a view; the timestamp is the day plus the
timeframe (what the published preprocessing of SR-GNN and its successors orders by). A
missing user is an anonymous visitor kept under `anonymous:<hash of the session>`.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from recsys.core.columns import Columns, EventType
from recsys.core.readers.base import ReadResult, finish, read_csv_strings, synthesize_event_ids
from recsys.core.visitors import anonymous_user_id

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
    frame[C.user_id] = users.where(~anonymous, frame[C.session_id].map(anonymous_user_id))
    frame[C.item_id] = raw["item_id"]
    frame[C.event_type] = EventType.view.value
    day = pd.to_datetime(raw["eventdate"], format="%Y-%m-%d", utc=True, errors="coerce")
    offset = pd.to_timedelta(pd.to_numeric(raw["timeframe"], errors="coerce"), unit="ms")
    frame[C.timestamp] = (day + offset).astype("datetime64[ms, UTC]")
    frame[C.event_id] = synthesize_event_ids(raw, NAME, ["session_id", "item_id", "timeframe"])
    raw_time = raw["eventdate"].fillna("") + " +" + raw["timeframe"].fillna("") + "ms"
    return ReadResult(finish(frame, f"{NAME} {path}", NAME, raw_time), rejects)
