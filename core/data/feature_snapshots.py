"""Feature snapshots in the lake's `features/` zone: `features/<table>/as_of=<UTC>.parquet`.

The one place that knows the layout. Every reader (catalogue, monitoring, feature drift)
finds a snapshot through `latest_snapshot` on a `Lake`, so the same code works on a local
folder and on `s3://`.
"""
from __future__ import annotations

import pandas as pd

from recsys.core.data.lake import Lake

FEATURES_ZONE = "features"
FEATURE_TIMESTAMP = "feature_timestamp"
"""Event-time column of every feature table (Feast's `timestamp_field`)."""
_STAMP_FORMAT = "%Y%m%dT%H%M%S"
_PREFIX = "as_of="


def snapshot_key(table: str, as_of: pd.Timestamp) -> str:
    """Lake key of `table`'s snapshot taken at `as_of` (UTC, whole seconds)."""
    stamp = _utc(as_of).strftime(_STAMP_FORMAT)
    return f"{FEATURES_ZONE}/{table}/{_PREFIX}{stamp}.parquet"


def snapshot_time(key: str) -> pd.Timestamp | None:
    """The `as_of` time a snapshot key names, or None for any other file."""
    name = key.rsplit("/", 1)[-1]
    if not (name.startswith(_PREFIX) and name.endswith(".parquet")):
        return None
    try:
        return pd.Timestamp(pd.to_datetime(name[len(_PREFIX):-len(".parquet")],
                                           format=_STAMP_FORMAT), tz="UTC")
    except ValueError:
        return None


def list_snapshots(lake: Lake, table: str) -> list[tuple[pd.Timestamp, str]]:
    """Every snapshot of `table` as (as_of, key), oldest first."""
    found = []
    for key in lake.list(f"{FEATURES_ZONE}/{table}/"):
        stamp = snapshot_time(key)
        if stamp is not None:
            found.append((stamp, key))
    return sorted(found)


def latest_snapshot(lake: Lake, table: str, as_of: pd.Timestamp | None = None) -> str | None:
    """Key of the newest snapshot of `table` taken at or before `as_of` (default: the newest
    of all), or None when there is none."""
    limit = _utc(as_of) if as_of is not None else None
    eligible = [key for stamp, key in list_snapshots(lake, table)
                if limit is None or stamp <= limit]
    return eligible[-1] if eligible else None


def read_latest(lake: Lake, table: str, columns: list[str] | None = None,
                as_of: pd.Timestamp | None = None) -> pd.DataFrame | None:
    """The newest snapshot at or before `as_of` as a DataFrame, or None when there is none."""
    key = latest_snapshot(lake, table, as_of)
    return lake.read_table(key, columns=columns).to_pandas() if key else None


def _utc(moment) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
