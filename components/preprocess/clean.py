"""Event-level cleaning: near-duplicate removal and filling missing prices and ratings."""
from __future__ import annotations

import pandas as pd

from recsys.core.columns import Columns, EventType

C = Columns


def drop_near_duplicates(events: pd.DataFrame, seconds: int) -> pd.DataFrame:
    """Drop an event when the same user, item and type happened less than `seconds` before.

    Bursts (a page reloaded five times) collapse to their first event.
    """
    if events.empty or seconds == 0:
        return events
    keys = [C.user_id, C.item_id, C.event_type]
    ordered = events.sort_values(keys + [C.timestamp], kind="stable")
    same_key = (ordered[keys] == ordered[keys].shift()).all(axis=1)
    gap = ordered[C.timestamp].diff()
    repeat = same_key & (gap < pd.Timedelta(seconds=seconds))
    return ordered[~repeat].sort_values(C.timestamp, kind="stable").reset_index(drop=True)


def fill_prices(events: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Fill missing price from the item's median, then the category's median."""
    out = events.copy()
    missing = out[C.price].isna()
    counts = {"price_missing": int(missing.sum())}
    item_median = out.groupby(C.item_id)[C.price].transform("median")
    out[C.price] = out[C.price].fillna(item_median)
    counts["price_from_item"] = int(missing.sum() - out[C.price].isna().sum())
    still = out[C.price].isna()
    category_median = out.groupby(C.category)[C.price].transform("median")
    out[C.price] = out[C.price].fillna(category_median)
    counts["price_from_category"] = int(still.sum() - out[C.price].isna().sum())
    counts["price_unfilled"] = int(out[C.price].isna().sum())
    return out, counts


def fill_ratings(events: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Fill a rating event's missing rating with the item's mean rating, then the global mean."""
    out = events.copy()
    is_rating = out[C.event_type] == EventType.rating.value
    missing = is_rating & out[C.rating].isna()
    if missing.any():
        rated = out[is_rating]
        item_mean = rated.groupby(C.item_id)[C.rating].mean()
        fill = out.loc[missing, C.item_id].map(item_mean).fillna(rated[C.rating].mean())
        out.loc[missing, C.rating] = fill
    return out, {"rating_filled": int(missing.sum() - (missing & out[C.rating].isna()).sum())}


def add_weights(events: pd.DataFrame, weights: dict[str, float]) -> pd.DataFrame:
    """Attach the interaction weight of each event's type (unknown types weigh 0)."""
    return events.assign(**{C.weight: events[C.event_type].map(weights).fillna(0.0)})


def aggregate_interactions(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, item): summed weight, event count, last time, last rating."""
    positive = events[events[C.weight] > 0]
    grouped = positive.groupby([C.user_id, C.item_id], sort=False)
    out = grouped.agg(**{
        C.weight: (C.weight, "sum"),
        "events": (C.weight, "size"),
        C.timestamp: (C.timestamp, "max"),
        C.rating: (C.rating, "last"),
    }).reset_index()
    return out.sort_values([C.user_id, C.item_id], kind="stable").reset_index(drop=True)
