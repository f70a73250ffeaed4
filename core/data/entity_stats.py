"""Batch feature tables for users and items, computed as of a point in time."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from recsys.core.data.columns import POPULARITY_SCORE, Columns, EventType
from recsys.core.data.feature_snapshots import FEATURE_TIMESTAMP

C = Columns
PRICE_BANDS = np.array(["budget", "mid", "premium", "luxury"])
TIME_OF_DAY = np.array(["night"] * 6 + ["morning"] * 6 + ["afternoon"] * 6 + ["evening"] * 6)
MIN_ITEMS_FOR_CATEGORY_BANDS = 4
_TS = pa.timestamp("ms", tz="UTC")
USER_FEATURES_SCHEMA = pa.schema([
    pa.field(C.user_id, pa.string()), pa.field("events", pa.int64()),
    pa.field("unique_items", pa.int64()), pa.field("purchases", pa.int64()),
    pa.field("total_spend", pa.float64()), pa.field("avg_spend", pa.float64()),
    pa.field("preferred_category", pa.string()), pa.field("preferred_time_of_day", pa.string()),
    pa.field("days_since_last_event", pa.float64()), pa.field(FEATURE_TIMESTAMP, _TS),
])
"""The columns of `user_features`, in order (the spark engine's tasks return them)."""
ITEM_STATS_SCHEMA = pa.schema([
    pa.field(C.item_id, pa.string()), pa.field("views", pa.int64()),
    pa.field("unique_users", pa.int64()), pa.field("purchases", pa.int64()),
    pa.field("avg_rating", pa.float64()), pa.field("avg_price", pa.float64()),
    pa.field(C.category, pa.string()), pa.field(C.brand, pa.string()),
    pa.field("conversion_rate", pa.float64()), pa.field(POPULARITY_SCORE, pa.float64()),
    pa.field(FEATURE_TIMESTAMP, _TS),
])
"""The columns of `item_stats`, in order."""


def _mode_by(frame: pd.DataFrame, key: str, value: str, weight: str | None = None) -> pd.Series:
    """Most frequent (or heaviest) value per key; ties go to the smallest value."""
    data = frame[[key, value]].dropna()
    if weight is None:
        scored = data.groupby([key, value]).size().rename("w").reset_index()
    else:
        data = data.assign(w=frame.loc[data.index, weight])
        scored = data.groupby([key, value])["w"].sum().reset_index()
    best = scored.sort_values([key, "w", value], ascending=[True, False, True])
    return best.drop_duplicates(key).set_index(key)[value]


def user_features(events: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Per user: purchases, events, unique items, average and total spend, preferred category
    and time of day, days since last activity."""
    purchases = events[events[C.event_type] == EventType.purchase.value]
    grouped = events.groupby(C.user_id)
    out = pd.DataFrame({
        "events": grouped.size(),
        "unique_items": grouped[C.item_id].nunique(),
        "last_event": grouped[C.timestamp].max(),
    })
    spend = purchases.groupby(C.user_id)[C.price]
    out["purchases"] = purchases.groupby(C.user_id).size()
    out["total_spend"] = spend.sum()
    out["avg_spend"] = spend.mean()
    out[["purchases", "total_spend"]] = out[["purchases", "total_spend"]].fillna(0)
    out["purchases"] = out["purchases"].astype("int64")
    weight = C.weight if C.weight in events.columns else None
    out["preferred_category"] = _mode_by(events, C.user_id, C.category, weight)
    hours = events.assign(_tod=TIME_OF_DAY[events[C.timestamp].dt.hour.to_numpy()])
    out["preferred_time_of_day"] = _mode_by(hours, C.user_id, "_tod")
    out["days_since_last_event"] = (as_of - out.pop("last_event")).dt.total_seconds() / 86_400
    out[FEATURE_TIMESTAMP] = as_of
    return out.reset_index().rename(columns={"index": C.user_id})


def price_bands(avg_price: pd.Series, category: pd.Series) -> pd.Series:
    """budget/mid/premium/luxury by price quartile within the item's category (global
    quartiles for categories with too few items)."""
    global_rank = avg_price.rank(pct=True)
    sizes = category.map(category.value_counts())
    in_category = avg_price.groupby(category).rank(pct=True)
    rank = in_category.where(sizes >= MIN_ITEMS_FOR_CATEGORY_BANDS, global_rank)
    band = np.clip(np.ceil(rank.fillna(0.5) * 4) - 1, 0, 3).astype(int)
    return pd.Series(PRICE_BANDS[band], index=avg_price.index).where(avg_price.notna())


def item_features(events: pd.DataFrame, as_of: pd.Timestamp, half_life_days: float) -> pd.DataFrame:
    """Per item: views, unique users, purchases, conversion, average rating and price, price
    band, recency-decayed popularity, category and brand."""
    return with_price_bands(item_stats(events, as_of, half_life_days))


def item_stats(events: pd.DataFrame, as_of: pd.Timestamp, half_life_days: float) -> pd.DataFrame:
    """The item features computed from each item's own events alone (all but the band)."""
    grouped = events.groupby(C.item_id)
    kind = events[C.event_type]
    out = pd.DataFrame({
        "views": events[kind == EventType.view.value].groupby(C.item_id).size(),
        "unique_users": grouped[C.user_id].nunique(),
        "purchases": events[kind == EventType.purchase.value].groupby(C.item_id).size(),
        "avg_rating": grouped[C.rating].mean(),
        "avg_price": grouped[C.price].mean(),
        C.category: _mode_by(events, C.item_id, C.category),
        C.brand: _mode_by(events, C.item_id, C.brand),
    })
    out[["views", "purchases"]] = out[["views", "purchases"]].fillna(0).astype("int64")
    out["conversion_rate"] = out["purchases"] / out["views"].clip(lower=1)
    age_days = (as_of - events[C.timestamp]).dt.total_seconds() / 86_400
    decay = np.power(0.5, age_days.clip(lower=0) / half_life_days)
    weight = events[C.weight] if C.weight in events.columns else 1.0
    out[POPULARITY_SCORE] = (decay * weight).groupby(events[C.item_id]).sum()
    out[FEATURE_TIMESTAMP] = as_of
    return out.reset_index().rename(columns={"index": C.item_id})


def with_price_bands(stats: pd.DataFrame) -> pd.DataFrame:
    """`item_stats` of every item plus its price band (ranks across all items: one table)."""
    stats = stats.sort_values(C.item_id, kind="stable").reset_index(drop=True)
    band = price_bands(stats["avg_price"], stats[C.category].fillna("unknown"))
    out = stats.assign(price_band=band)
    return out[[c for c in out.columns if c != FEATURE_TIMESTAMP] + [FEATURE_TIMESTAMP]]
