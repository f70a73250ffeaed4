"""The small online-features API used by serving and the stream processor."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from feast import FeatureStore
from feast.data_source import PushMode

from recsys.core.data.columns import Columns
from recsys.core.data.feature_snapshots import FEATURE_TIMESTAMP
from recsys.core.errors import SchemaError
from recsys.feature_repo.features.definitions import (
    ITEM_STATS_SCHEMA,
    USER_SESSION_SCHEMA,
    USER_STATS_SCHEMA,
    FeatureRepo,
    price_to_user_avg_spend,
)

C = Columns
PUSH_SOURCE = "user_session_push"
USER_FEATURES = [f"user_stats:{f.name}" for f in USER_STATS_SCHEMA] + [
    f"user_session:{f.name}" for f in USER_SESSION_SCHEMA]
ITEM_FEATURES = [f"item_stats:{f.name}" for f in ITEM_STATS_SCHEMA]
PRICE_FIT = "price_fit__price_to_user_avg_spend"
# What an unknown entity gets instead of a value (the row is also marked missing).
# Unknown entities get: counts 0, flags False, lists empty, numbers NaN, text None.


@dataclass
class OnlineFeatures:
    """Per-user features (user_id, user_missing, <view>__<feature> ...) and, when items were
    asked for, per (user, item) features (user_id, item_id, item_missing, ...)."""

    users: pd.DataFrame
    items: pd.DataFrame | None


def _column(view: str, name: str) -> str:
    return f"{view}__{name}"


def _typed_frame(response: dict, views: list[tuple[str, list, str]]) -> pd.DataFrame:
    """Build the frame from Feast's column dict, replacing nulls with typed defaults; a
    flag column per view marks rows where the view had no value at all."""
    columns = dict(response)
    for view, schema, flag in views:
        names = [_column(view, f.name) for f in schema]
        missing = [all(columns[n][r] is None for n in names)
                   for r in range(len(columns[names[0]]))]
        columns[flag] = missing
        for field, name in zip(schema, names):
            kind = str(field.dtype)
            values = columns[name]
            if kind == "Array(String)":
                columns[name] = [list(v) if v is not None else [] for v in values]
            elif kind == "Int64":
                columns[name] = np.array([0 if v is None else v for v in values], dtype=np.int64)
            elif kind == "Float64":
                columns[name] = np.array([np.nan if v is None else v for v in values],
                                         dtype=np.float64)
            elif kind == "Bool":
                columns[name] = np.array([bool(v) if v is not None else False for v in values])
    return pd.DataFrame(columns)


def online_features(store: FeatureStore, user_ids: list[str],
                    item_ids: list[str] | None = None) -> OnlineFeatures:
    """Read online features; unknown users/items get defaults and `*_missing = True`."""
    user_ids = [str(u) for u in user_ids]
    response = store.get_online_features(
        features=USER_FEATURES, entity_rows=[{C.user_id: u} for u in user_ids],
        full_feature_names=True).to_dict()
    users = _typed_frame(response, [("user_stats", USER_STATS_SCHEMA, "user_missing"),
                                    ("user_session", USER_SESSION_SCHEMA, "session_missing")])
    items = None
    if item_ids is not None:
        items = pair_items(users, _item_rows(store, [str(i) for i in item_ids]))
    return OnlineFeatures(users=users, items=items)


def _item_rows(store: FeatureStore, item_ids: list[str]) -> pd.DataFrame:
    response = store.get_online_features(
        features=ITEM_FEATURES, entity_rows=[{C.item_id: i} for i in item_ids],
        full_feature_names=True).to_dict()
    return _typed_frame(response, [("item_stats", ITEM_STATS_SCHEMA, "item_missing")])


def pair_items(users: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    """Item rows repeated for each user, with the on-demand price fit computed by the view's
    own function (Feast's ODFV path would double the read time)."""
    spend = users.set_index(C.user_id)["user_stats__avg_spend"]
    items = pd.concat([stats.assign(**{C.user_id: u}) for u in users[C.user_id]],
                      ignore_index=True)
    items[PRICE_FIT] = price_to_user_avg_spend(items["item_stats__avg_price"],
                                               items[C.user_id].map(spend))
    item_cols = [_column("item_stats", f.name) for f in ITEM_STATS_SCHEMA]
    return items[[C.user_id, C.item_id, *item_cols, PRICE_FIT, "item_missing"]]


_KINDS = {"Array(String)": "list of strings", "Float64": "number", "String": "string",
          "Bool": "boolean", "UnixTimestamp": "timestamp"}


def check_session_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Validate a frame of session features for a push; the error names the field."""
    expected = {C.user_id: "String", FEATURE_TIMESTAMP: "UnixTimestamp",
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
    for name in (FEATURE_TIMESTAMP, "last_event_ts"):
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


class OnlineFeatureReader:
    """online_features with an in-process cache of item rows.

    Item features change only when a batch is materialized, while every request asks for
    ~100 candidates: caching them for `item_ttl_seconds` removes most of the read. User and
    session features are always read fresh (a new session event must show at once).
    """

    def __init__(self, store: FeatureStore, item_ttl_seconds: float = 60.0):
        self.store = store
        self.item_ttl_seconds = item_ttl_seconds
        self._items: dict[str, tuple[float, dict]] = {}

    def clear(self) -> None:
        """Forget cached items (call after a materialization)."""
        self._items.clear()

    def read_one(self, user_id: str, item_ids: list[str]) -> OnlineFeatures:
        return self.read([user_id], item_ids)

    def read(self, user_ids: list[str], item_ids: list[str] | None = None) -> OnlineFeatures:
        users = online_features(self.store, user_ids).users
        if item_ids is None:
            return OnlineFeatures(users=users, items=None)
        now = time.monotonic()
        item_ids = [str(i) for i in item_ids]
        stale = [i for i in dict.fromkeys(item_ids)
                 if i not in self._items or now - self._items[i][0] > self.item_ttl_seconds]
        if stale:
            for record in _item_rows(self.store, stale).to_dict("records"):
                self._items[record[C.item_id]] = (now, record)
        stats = pd.DataFrame([self._items[i][1] for i in item_ids])
        return OnlineFeatures(users=users, items=pair_items(users, stats))
