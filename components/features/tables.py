"""Feature tables in the lake's `features/` zone, one Parquet file per snapshot time
(the layout is `recsys.core.data.feature_snapshots`)."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa

from recsys.core.data.columns import Columns
from recsys.core.data.entity_stats import item_features, user_features
from recsys.core.data.feature_snapshots import FEATURE_TIMESTAMP, snapshot_key
from recsys.core.data.lake import Lake
from recsys.core.data.processed import Processed
from recsys.feature_repo.features.definitions import (
    ITEM_STATS_SCHEMA,
    USER_SESSION_SCHEMA,
    USER_STATS_SCHEMA,
)
from recsys.feature_repo.features.session_features import session_features

C = Columns
USER_STATS_COLUMNS = [C.user_id, *(f.name for f in USER_STATS_SCHEMA), FEATURE_TIMESTAMP]
ITEM_STATS_COLUMNS = [C.item_id, *(f.name for f in ITEM_STATS_SCHEMA), FEATURE_TIMESTAMP]
USER_SESSION_COLUMNS = [C.user_id, *(f.name for f in USER_SESSION_SCHEMA), FEATURE_TIMESTAMP]


def write_snapshot(lake: Lake, table: str, frame: pd.DataFrame, columns: list[str],
                   mirrors: tuple[Lake, ...] = ()) -> str:
    """Write one snapshot (re-writing the same snapshot time replaces it: idempotent), also
    to every mirror (the local copy Feast's file offline store reads when the lake is S3)."""
    as_of = pd.Timestamp(frame[FEATURE_TIMESTAMP].iloc[0])
    data = frame[columns].copy()
    # one time unit across snapshots: Dask cannot index a column whose files disagree
    for column in (FEATURE_TIMESTAMP, "last_event_ts"):
        if column in data.columns:
            data[column] = pd.to_datetime(data[column], utc=True).astype("datetime64[us, UTC]")
    key = snapshot_key(table, as_of)
    table_data = pa.Table.from_pandas(data, preserve_index=False)
    for target in (lake, *mirrors):
        target.write_table(key, table_data)
    return key


def latest_tables(events: pd.DataFrame, end: pd.Timestamp,
                  half_life_days: float) -> dict[str, pd.DataFrame]:
    """What serving should see: user and item stats and session features as of `end`."""
    return {"user_stats": user_features(events, end),
            "item_stats": item_features(events, end, half_life_days),
            "user_session": session_features(events, end)}


def write_feature_tables(lake: Lake, processed: Processed, half_life_days: float = 7.0,
                         mirrors: tuple[Lake, ...] = (),
                         latest: dict[str, pd.DataFrame] | None = None) -> dict[str, list[str]]:
    """Snapshots for Feast: user/item stats as of the split (what training saw) and as of the
    window end (what serving should see), and session features as of the window end.
    `latest` is `latest_tables` when the caller computed it (the spark engine); else it is
    computed here from `processed.events`."""
    end = pd.Timestamp(processed.summary["window_end"])
    if latest is None:
        latest = latest_tables(processed.events, end, half_life_days)
    written: dict[str, list[str]] = {"user_stats": [], "item_stats": [], "user_session": []}
    if not processed.user_features.empty:
        written["user_stats"].append(write_snapshot(lake, "user_stats", processed.user_features,
                                                    USER_STATS_COLUMNS, mirrors))
        written["item_stats"].append(write_snapshot(lake, "item_stats", processed.item_features,
                                                    ITEM_STATS_COLUMNS, mirrors))
    written["user_stats"].append(write_snapshot(lake, "user_stats", latest["user_stats"],
                                                USER_STATS_COLUMNS, mirrors))
    written["item_stats"].append(write_snapshot(lake, "item_stats", latest["item_stats"],
                                                ITEM_STATS_COLUMNS, mirrors))
    if not latest["user_session"].empty:
        written["user_session"].append(write_snapshot(lake, "user_session",
                                                      latest["user_session"],
                                                      USER_SESSION_COLUMNS, mirrors))
    return written
