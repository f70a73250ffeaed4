"""The relational batch layout: user_events(event_id, user_id, item_id, event_type,
timestamp, session_id, rating, price) with an optional items(item_id, name, category,
brand, price, ...) table beside it."""
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
    timestamps_flexible,
)

C = Columns
NAME = "user_events"
MARKER_COLUMNS = {"user_id", "item_id", "event_type", "timestamp"}


def read(path: Path) -> ReadResult:
    """Read user_events.csv (a file or its folder), enriched from a sibling items.csv."""
    events_path = path / "user_events.csv" if path.is_dir() else path
    raw, rejects = read_csv_strings(events_path)
    frame = pd.DataFrame(index=raw.index)
    for name in (C.user_id, C.item_id, C.session_id, C.rating, C.price):
        frame[name] = raw.get(name)
    frame[C.event_type] = map_event_types(raw[C.event_type])
    frame[C.timestamp] = timestamps_flexible(raw[C.timestamp])
    if C.event_id in raw.columns:
        frame[C.event_id] = raw[C.event_id]
    else:
        frame[C.event_id] = synthesize_event_ids(
            raw, NAME, [C.user_id, C.item_id, C.event_type, C.timestamp])
    items_path = events_path.parent / "items.csv"
    if items_path.exists():
        items, _ = read_csv_strings(items_path)
        items = items.drop_duplicates(C.item_id).set_index(C.item_id)
        for name in (C.category, C.brand):
            if name in items.columns:
                frame[name] = frame[C.item_id].map(items[name])
        if C.price in items.columns:
            frame[C.price] = frame[C.price].fillna(frame[C.item_id].map(items[C.price]))
    return ReadResult(finish(frame, f"{NAME} {events_path}", NAME, raw[C.timestamp]), rejects)
