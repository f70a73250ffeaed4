"""Event-level cleaning: near-duplicate removal and filling missing prices and ratings."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from recsys.core.data.columns import Columns, EventType
from recsys.core.data.time_order import epoch_ticks, in_time_order

C = Columns
INTERACTIONS_SCHEMA = pa.schema([
    pa.field(C.user_id, pa.string()), pa.field(C.item_id, pa.string()),
    pa.field(C.weight, pa.float64()), pa.field("events", pa.int64()),
    pa.field(C.timestamp, pa.timestamp("ms", tz="UTC")), pa.field(C.rating, pa.float64()),
])
"""The columns of `aggregate_interactions`, in order."""


def drop_near_duplicates(events: pd.DataFrame, seconds: int) -> pd.DataFrame:
    """Drop an event when the same user, item and type happened less than `seconds` before.

    Bursts (a page reloaded five times) collapse to their first event. Returns the kept
    rows in time order (timestamp, then event id: the same event is kept whatever order
    rows come in). A row with a null user, item or type is never a repeat.
    """
    if events.empty or seconds == 0:
        return events
    timed = in_time_order(events)
    ticks = epoch_ticks(timed[C.timestamp])
    if ticks is None or timed[C.timestamp].isna().any():
        return _drop_near_duplicates_sorting(timed, seconds)
    codes = [pd.factorize(timed[key])[0] for key in NEAR_DUPLICATE_KEYS]
    # rows grouped by key, each group in time order (its position in `timed`)
    order = np.lexsort((np.arange(len(timed)), *reversed(codes)))
    same_key = np.ones(len(order) - 1, dtype=bool)
    for code in codes:
        ordered = code[order]
        same_key &= (ordered[1:] == ordered[:-1]) & (ordered[1:] >= 0)
    stamps = ticks[0][order]
    repeat = same_key & (stamps[1:] - stamps[:-1] < seconds * ticks[1])
    dropped = np.zeros(len(timed), dtype=bool)
    dropped[order[1:][repeat]] = True
    if not dropped.any():
        return timed
    return timed[~dropped].reset_index(drop=True)


NEAR_DUPLICATE_KEYS = [C.user_id, C.item_id, C.event_type]


def _drop_near_duplicates_sorting(events: pd.DataFrame, seconds: int) -> pd.DataFrame:
    """The same rule by sorting, for frames with rows that have no time."""
    keys = NEAR_DUPLICATE_KEYS
    ordered = events.sort_values(keys + [C.timestamp, C.event_id], kind="stable")
    same_key = (ordered[keys] == ordered[keys].shift()).all(axis=1)
    gap = ordered[C.timestamp].diff()
    repeat = same_key & (gap < pd.Timedelta(seconds=seconds))
    return in_time_order(ordered[~repeat])


PRICE_FILL_KEYS = {C.item_id: "price_from_item", C.category: "price_from_category"}
"""A missing price is filled from the median price of the item's events, then of the
category's: each pass groups by one key (the spark engine runs it per key group)."""


def fill_price_by(events: pd.DataFrame, key: str) -> pd.DataFrame:
    """Missing prices filled with the median price of the rows sharing `key` (rows whose
    key is null are left as they are)."""
    median = events.groupby(key)[C.price].transform("median")
    return events.assign(**{C.price: events[C.price].fillna(median)})


def fill_prices(events: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Fill missing price from the item's median, then the category's median."""
    counts = {"price_missing": int(events[C.price].isna().sum())}
    out = events
    for key in PRICE_FILL_KEYS:
        before = int(out[C.price].isna().sum())
        out = fill_price_by(out, key)
        counts[PRICE_FILL_KEYS[key]] = before - int(out[C.price].isna().sum())
    counts["price_unfilled"] = int(out[C.price].isna().sum())
    return out, counts


def rating_events(events: pd.DataFrame) -> pd.Series:
    """Rows that are rating events (the only ones whose missing rating is filled)."""
    return events[C.event_type] == EventType.rating.value


def fill_ratings(events: pd.DataFrame, global_mean: float | None = None
                 ) -> tuple[pd.DataFrame, dict[str, int]]:
    """Fill a rating event's missing rating with the item's mean rating, then the mean of
    every rating event (`global_mean`: computed here unless the caller, holding only one
    group of items, passes it)."""
    out = events.copy()
    is_rating = rating_events(out)
    missing = is_rating & out[C.rating].isna()
    if missing.any():
        rated = out[is_rating]
        item_mean = rated.groupby(C.item_id)[C.rating].mean()
        overall = rated[C.rating].mean() if global_mean is None else global_mean
        fill = out.loc[missing, C.item_id].map(item_mean).fillna(overall)
        out.loc[missing, C.rating] = fill
    return out, {"rating_filled": int(missing.sum() - (missing & out[C.rating].isna()).sum())}


def add_weights(events: pd.DataFrame, weights: dict[str, float]) -> pd.DataFrame:
    """Attach the interaction weight of each event's type (unknown types weigh 0)."""
    return events.assign(**{C.weight: events[C.event_type].map(weights).fillna(0.0)})


def aggregate_interactions(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, item): summed weight, event count, last time, last rating."""
    positive = in_time_order(events[events[C.weight] > 0])
    grouped = positive.groupby([C.user_id, C.item_id], sort=False)
    out = grouped.agg(**{
        C.weight: (C.weight, "sum"),
        "events": (C.weight, "size"),
        C.timestamp: (C.timestamp, "max"),
        C.rating: (C.rating, "last"),
    }).reset_index()
    return out.sort_values([C.user_id, C.item_id], kind="stable").reset_index(drop=True)
