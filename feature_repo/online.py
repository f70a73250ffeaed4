"""The small online-features API used by serving and the stream processor."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from feast import FeatureStore
from feast.data_source import PushMode

from components.common.columns import Columns
from components.common.errors import SchemaError
from feature_repo.definitions import (
    EVENT_TIMESTAMP,
    ITEM_STATS_SCHEMA,
    USER_SESSION_SCHEMA,
    USER_STATS_SCHEMA,
    FeatureRepo,
)

C = Columns
PUSH_SOURCE = "user_session_push"
USER_FEATURES = [f"user_stats:{f.name}" for f in USER_STATS_SCHEMA] + [
    f"user_session:{f.name}" for f in USER_SESSION_SCHEMA]
ITEM_FEATURES = [f"item_stats:{f.name}" for f in ITEM_STATS_SCHEMA] + [
    "price_fit:price_to_user_avg_spend"]
# What an unknown entity gets instead of a value (the row is also marked missing).
# counts 0, flags False, lists empty, numbers NaN, text None, times NaT
DEFAULTS = {"Int64": 0, "Bool": False, "Array(String)": [], "Float64": np.nan,
            "String": None, "UnixTimestamp": pd.NaT}


@dataclass
class OnlineFeatures:
    """Per-user features (user_id, user_missing, <view>__<feature> ...) and, when items were
    asked for, per (user, item) features (user_id, item_id, item_missing, ...)."""

    users: pd.DataFrame
    items: pd.DataFrame | None


def _column(view: str, name: str) -> str:
    return f"{view}__{name}"


def _fill_defaults(frame: pd.DataFrame, view: str, schema, missing: pd.Series) -> None:
    for field in schema:
        column = _column(view, field.name)
        default = DEFAULTS[str(field.dtype)]
        if isinstance(default, list):
            frame[column] = [v if isinstance(v, (list, np.ndarray)) and not m else []
                             for v, m in zip(frame[column], missing)]
            frame[column] = frame[column].map(list)
        elif str(field.dtype) == "Int64":
            frame[column] = frame[column].where(frame[column].notna(), 0).astype("int64")
        elif str(field.dtype) == "Float64":
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        elif str(field.dtype) == "Bool":
            frame[column] = frame[column].where(frame[column].notna(), False).astype(bool)


def online_features(store: FeatureStore, user_ids: list[str],
                    item_ids: list[str] | None = None) -> OnlineFeatures:
    """Read online features; unknown users/items get defaults and `*_missing = True`."""
    user_ids = [str(u) for u in user_ids]
    users = store.get_online_features(
        features=USER_FEATURES, entity_rows=[{C.user_id: u} for u in user_ids],
        full_feature_names=True).to_df()
    stats_cols = [_column("user_stats", f.name) for f in USER_STATS_SCHEMA]
    session_cols = [_column("user_session", f.name) for f in USER_SESSION_SCHEMA]
    users["user_missing"] = users[stats_cols].isna().all(axis=1)
    users["session_missing"] = users[session_cols].isna().all(axis=1)
    _fill_defaults(users, "user_stats", USER_STATS_SCHEMA, users["user_missing"])
    _fill_defaults(users, "user_session", USER_SESSION_SCHEMA, users["session_missing"])
    items = None
    if item_ids is not None:
        rows = [{C.user_id: u, C.item_id: str(i)} for u in user_ids for i in item_ids]
        items = store.get_online_features(features=ITEM_FEATURES, entity_rows=rows,
                                          full_feature_names=True).to_df()
        item_cols = [_column("item_stats", f.name) for f in ITEM_STATS_SCHEMA]
        items["item_missing"] = items[item_cols].isna().all(axis=1)
        _fill_defaults(items, "item_stats", ITEM_STATS_SCHEMA, items["item_missing"])
    return OnlineFeatures(users=users, items=items)


_KINDS = {"Array(String)": "list of strings", "Float64": "number", "String": "string",
          "Bool": "boolean", "UnixTimestamp": "timestamp"}


def check_session_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Validate a frame of session features for a push; the error names the field."""
    expected = {C.user_id: "String", EVENT_TIMESTAMP: "UnixTimestamp",
                **{f.name: str(f.dtype) for f in USER_SESSION_SCHEMA}}
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise SchemaError(f"session features: missing field(s) {missing}")
    extra = [c for c in frame.columns if c not in expected]
    if extra:
        raise SchemaError(f"session features: unknown field(s) {extra}; allowed {list(expected)}")
    out = frame.copy()
    for name, kind in expected.items():
        values = out[name]
        bad = ~values.map(lambda v, k=kind: _fits(v, k))
        if bad.any():
            example = values[bad].iloc[0]
            raise SchemaError(f"session features: field {name!r} must be a {_KINDS.get(kind, kind)}"
                              f" (row {int(bad.idxmax())} has {example!r})")
    for name in (EVENT_TIMESTAMP, "last_event_ts"):
        out[name] = pd.to_datetime(out[name], utc=True)
    out["recent_items"] = out["recent_items"].map(lambda v: [str(x) for x in v])
    return out


def _fits(value, kind: str) -> bool:
    if kind == "Array(String)":
        return isinstance(value, (list, tuple, np.ndarray)) and all(
            isinstance(x, str) for x in value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return kind in ("Float64", "String")
    if kind == "Float64":
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
            value, bool)
    if kind == "String":
        return isinstance(value, str)
    if kind == "Bool":
        return isinstance(value, (bool, np.bool_))
    return isinstance(value, (pd.Timestamp, np.datetime64)) or hasattr(value, "tzinfo")


def push_session_features(store: FeatureStore, frame: pd.DataFrame,
                          to: PushMode = PushMode.ONLINE) -> int:
    """Validate and push session features (online by default; the lake sink keeps history)."""
    checked = check_session_frame(frame)
    store.push(PUSH_SOURCE, checked, to=to)
    return len(checked)


def training_features(store: FeatureStore, repo: FeatureRepo,
                      entity_df: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time join of the training_v1 service onto (user_id, item_id, event_timestamp)
    rows: each row only sees feature snapshots taken at or before its own timestamp."""
    return store.get_historical_features(entity_df=entity_df, features=repo.training_v1,
                                         full_feature_names=True).to_df()
