"""Quarantine: every row a step refuses is kept, with the reason, in the lake."""
from __future__ import annotations

import hashlib

import pandas as pd

from recsys.core.data.columns import Columns
from recsys.core.data.event_store import (
    QUARANTINE_SCHEMA,
    QUARANTINE_ZONE,
    AppendResult,
    append_partitioned,
)
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_COLUMNS, empty_events

C = Columns


def quarantine_rows(events: pd.DataFrame, reasons: pd.Series) -> pd.DataFrame:
    """Events refused for `reasons` (aligned), in the quarantine layout."""
    frame = events.reindex(columns=list(RAW_EVENT_COLUMNS)).copy()
    frame[C.reason] = reasons.to_numpy()
    frame[C.raw] = None
    # keyed by the whole row, not its event id: distinct bad rows sharing an id (or none)
    # are each kept; only the very same row refused again for the same reason is one
    content = pd.util.hash_pandas_object(frame[list(RAW_EVENT_COLUMNS)].astype(str),
                                         index=False).astype(str)
    frame[C.quarantine_id] = _ids(content + "|" + frame[C.reason].astype(str))
    return frame


def quarantine_lines(rejects: pd.DataFrame) -> pd.DataFrame:
    """Input lines no reader could parse, in the quarantine layout (no timestamp known)."""
    frame = empty_events().reindex(range(len(rejects)))
    frame[C.reason] = rejects[C.reason].to_numpy()
    frame[C.raw] = rejects[C.raw].to_numpy()
    frame[C.timestamp] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ms, UTC]")
    frame[C.quarantine_id] = _ids(frame[C.raw].astype(str) + "|" + frame[C.reason])
    return frame


def write_quarantine(lake: Lake, frame: pd.DataFrame) -> AppendResult:
    """Append quarantined rows; the same row refused for the same reason is kept once."""
    return append_partitioned(lake, QUARANTINE_ZONE, frame, C.quarantine_id, QUARANTINE_SCHEMA)


def _ids(keys: pd.Series) -> pd.Series:
    return keys.map(lambda k: hashlib.sha1(k.encode()).hexdigest()[:20])


def reason_counts(reasons: pd.Series) -> dict[str, int]:
    """Counts per reason code (the text before the first ':')."""
    codes = reasons.astype(str).str.split(":").str[0].str.strip()
    return {k: int(v) for k, v in codes.value_counts().sort_index().items()}
