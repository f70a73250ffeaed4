"""Session features straight into the online store.

`store.push()` turns a DataFrame into Arrow and then, value by value, into the protos its
online store writes (~0.25 ms per user row, most of the stream processor's time). The
processor's frames have a fixed, already-checked shape, so this writer builds the same
protos directly and hands them to the store's own `online_write_batch` - the call push ends
in - so keys, encoding, timestamps and the newer-wins rule stay Feast's. Values read back
through Feast are identical (tested against `push_session_features`). On a plain Redis online
store the rows go through feature_repo/features/redis_rows.py instead: Feast's format and newer-wins
rule, one script call per batch.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from feast import FeatureStore
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import StringList
from feast.protos.feast.types.Value_pb2 import Value as ValueProto

from recsys.core.data.columns import Columns
from recsys.core.data.feature_snapshots import FEATURE_TIMESTAMP
from recsys.core.errors import SchemaError
from recsys.feature_repo.features.definitions import SESSION_VIEW, USER_SESSION_SCHEMA
from recsys.feature_repo.features.feast_adapter import provider
from recsys.feature_repo.features.redis_rows import redis_row_writer

C = Columns
COLUMNS = [C.user_id, *(f.name for f in USER_SESSION_SCHEMA), FEATURE_TIMESTAMP]
EMPTY = ValueProto()
TRUE, FALSE = ValueProto(bool_val=True), ValueProto(bool_val=False)
CATEGORY_CACHE_SIZE = 10_000


def _seconds(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values, utc=True).astype("int64").to_numpy() // 1_000_000_000


def session_protos(frame: pd.DataFrame, categories: dict[str, ValueProto] | None = None
                   ) -> list[tuple]:
    """(entity key, {feature: value}, event timestamp, None) per row, as Feast builds them
    for the `user_session` view. `categories`: a cache of category values to reuse (a
    shop has a few hundred categories; cleared when it passes CATEGORY_CACHE_SIZE)."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise SchemaError(f"session features: missing field(s) {missing}")
    categories = {} if categories is None else categories
    last_seen = _seconds(frame["last_event_ts"]).tolist()
    stamps = pd.to_datetime(frame[FEATURE_TIMESTAMP], utc=True)
    timestamps = pd.DatetimeIndex(stamps).to_pydatetime()
    prices = pd.to_numeric(frame["avg_view_price_10m"], errors="coerce").to_numpy(float).tolist()
    rows = zip(frame[C.user_id].astype(str), frame["recent_items"], prices,
               frame["top_category_30m"], frame["cart_abandonment_risk"].astype(bool),
               frame["comparing_products"].astype(bool), last_seen, timestamps)
    out = []
    for user, items, price, category, cart_risk, comparing, seen, timestamp in rows:
        if isinstance(category, str):
            category_value = categories.get(category)
            if category_value is None:
                if len(categories) >= CATEGORY_CACHE_SIZE:
                    categories.clear()
                category_value = categories[category] = ValueProto(string_val=category)
        else:
            category_value = EMPTY
        values = {
            "recent_items": ValueProto(string_list_val=_string_list(items)),
            "avg_view_price_10m": EMPTY if price != price else ValueProto(double_val=price),
            "top_category_30m": category_value,
            "cart_abandonment_risk": TRUE if cart_risk else FALSE,
            "comparing_products": TRUE if comparing else FALSE,
            "last_event_ts": ValueProto(unix_timestamp_val=seen),
        }
        key = EntityKeyProto(join_keys=[C.user_id], entity_values=[ValueProto(string_val=user)])
        out.append((key, values, timestamp, None))
    return out


def _string_list(items) -> StringList:
    """Item ids as a StringList (they are strings from the processor; ids of a frame from
    elsewhere may be numbers)."""
    try:
        return StringList(val=items)
    except TypeError:
        return StringList(val=[str(i) for i in items])


class SessionFeatureWriter:
    """`write(frame)`: the processor's session rows into the online store, one batch."""

    def __init__(self, store: FeatureStore):
        self.store = store
        self.view = store.get_feature_view(SESSION_VIEW)
        self.provider = provider(store)
        self.redis = redis_row_writer(store, self.view)
        self._categories: dict[str, ValueProto] = {}

    def write(self, frame: pd.DataFrame) -> int:
        """Returns the rows offered (a row older than the stored one is not written)."""
        if frame.empty:
            return 0
        data = session_protos(frame, self._categories)
        if self.redis is not None:
            self.redis.write(data)
        else:
            self.provider.online_write_batch(self.store.config, self.view, data, progress=None)
        return len(data)
