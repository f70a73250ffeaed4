"""REES46 "eCommerce behavior data from multi category store" CSV."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from recsys.core.data.columns import Columns
from recsys.core.data.readers.base import (
    ReadResult,
    finish,
    map_event_types,
    read_csv_strings,
    synthesize_event_ids,
)

C = Columns
NAME = "rees46"
MARKER_COLUMNS = {"event_time", "event_type", "product_id", "user_id"}


def read(path: Path) -> ReadResult:
    """Read a REES46 CSV; category is the category_code, or the category_id where none."""
    raw, rejects = read_csv_strings(path)
    frame = pd.DataFrame(index=raw.index)
    frame[C.user_id] = raw["user_id"]
    frame[C.item_id] = raw["product_id"]
    frame[C.session_id] = raw.get("user_session")
    frame[C.event_type] = map_event_types(raw["event_type"])
    frame[C.timestamp] = pd.to_datetime(
        raw["event_time"], format="%Y-%m-%d %H:%M:%S UTC", utc=True, errors="coerce"
    ).astype("datetime64[ms, UTC]")
    frame[C.price] = raw.get("price")
    code = raw.get("category_code")
    cat_id = raw.get("category_id")
    if code is not None and cat_id is not None:
        frame[C.category] = code.where(code.notna(), cat_id)
    else:
        frame[C.category] = code if code is not None else cat_id
    frame[C.brand] = raw.get("brand")
    frame[C.event_id] = synthesize_event_ids(
        raw, NAME, ["event_time", "event_type", "product_id", "user_id", "user_session"])
    return ReadResult(finish(frame, f"{NAME} {path}", NAME, raw["event_time"]), rejects)
