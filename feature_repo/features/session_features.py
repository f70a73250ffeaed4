"""Session features from events, computed in batch (docs/features.md).

The stream processor keeps the same definitions incrementally; this batch form seeds the
`user_session` history in the lake and is what streaming results are checked against.

As of time T, per user, over the user's events with timestamp <= T:
- recent_items: the last 50 distinct items interacted with, newest last;
- avg_view_price_10m: mean price of views in (T-10m, T] (null when none);
- top_category_30m: most frequent category of events in (T-30m, T] (ties: most recent);
- cart_abandonment_risk: an add_to_cart at least 10 minutes old with no purchase after it;
- comparing_products: within (T-30m, T], 3+ consecutive views in one category, then 2+ of
  those items added to cart;
- last_event_ts: the newest event time.
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pyarrow as pa

from recsys.core.data.columns import Columns, EventType
from recsys.core.data.feature_snapshots import FEATURE_TIMESTAMP

C = Columns
SESSION_FEATURES_SCHEMA = pa.schema([
    pa.field(C.user_id, pa.string()), pa.field("last_event_ts", pa.timestamp("ms", tz="UTC")),
    pa.field("recent_items", pa.list_(pa.string())), pa.field("avg_view_price_10m", pa.float64()),
    pa.field("top_category_30m", pa.string()), pa.field("cart_abandonment_risk", pa.bool_()),
    pa.field("comparing_products", pa.bool_()),
    pa.field(FEATURE_TIMESTAMP, pa.timestamp("ms", tz="UTC")),
])
"""The columns of `session_features`, in order."""
RECENT_ITEMS = 50
PRICE_WINDOW = pd.Timedelta(minutes=10)
CATEGORY_WINDOW = pd.Timedelta(minutes=30)
ABANDON_AFTER = pd.Timedelta(minutes=10)
COMPARE_WINDOW = pd.Timedelta(minutes=30)
COMPARE_RUN = 3
COMPARE_CARTS = 2


def session_features(events: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """One row per user with events at or before `as_of` that name an item (a search
    without one leaves the session features as they are)."""
    # the event id (where there is one) breaks ties of time: the same order however the
    # rows arrive (the spark engine hands each task its users' rows in no set order)
    order = [C.user_id, C.timestamp] + ([C.event_id] if C.event_id in events.columns else [])
    events = events[(events[C.timestamp] <= as_of) & events[C.item_id].notna()
                    & events[C.item_id].ne("")].sort_values(order, kind="stable")
    if events.empty:
        return _empty()
    users = events.groupby(C.user_id, sort=True)
    out = pd.DataFrame({"last_event_ts": users[C.timestamp].max()})
    out["recent_items"] = recent_items(events)
    views = events[(events[C.event_type] == EventType.view.value)
                   & (events[C.timestamp] > as_of - PRICE_WINDOW)]
    out["avg_view_price_10m"] = views.groupby(C.user_id)[C.price].mean()
    out["top_category_30m"] = top_category(events[events[C.timestamp] > as_of - CATEGORY_WINDOW])
    out["cart_abandonment_risk"] = cart_abandonment(events, as_of).reindex(out.index,
                                                                           fill_value=False)
    out["comparing_products"] = comparing_products(
        events[events[C.timestamp] > as_of - COMPARE_WINDOW]).reindex(out.index,
                                                                      fill_value=False)
    out[FEATURE_TIMESTAMP] = as_of
    return out.rename_axis(C.user_id).reset_index()


def recent_items(events: pd.DataFrame) -> pd.Series:
    """Last RECENT_ITEMS distinct items per user, newest last (events sorted by user, time)."""
    latest = events.drop_duplicates([C.user_id, C.item_id], keep="last")
    latest = latest.groupby(C.user_id, sort=False).tail(RECENT_ITEMS)
    return latest.groupby(C.user_id)[C.item_id].agg(list)


def top_category(window: pd.DataFrame) -> pd.Series:
    data = window.dropna(subset=[C.category])
    if data.empty:
        return pd.Series(dtype=object)
    stats = data.groupby([C.user_id, C.category]).agg(n=(C.timestamp, "size"),
                                                      last=(C.timestamp, "max")).reset_index()
    best = stats.sort_values([C.user_id, "n", "last"], ascending=[True, False, False])
    return best.drop_duplicates(C.user_id).set_index(C.user_id)[C.category]


def cart_abandonment(events: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    kind = events[C.event_type]
    last_purchase = events[kind == EventType.purchase.value].groupby(C.user_id)[C.timestamp].max()
    carts = events[kind == EventType.add_to_cart.value]
    after = carts[C.timestamp] > carts[C.user_id].map(last_purchase).fillna(
        pd.Timestamp.min.tz_localize("UTC"))
    open_carts = carts[after]
    oldest_open = open_carts.groupby(C.user_id)[C.timestamp].min()
    return oldest_open <= as_of - ABANDON_AFTER


def comparing_products(window: pd.DataFrame) -> pd.Series:
    """Users with a run of 3+ same-category views followed by 2+ of those items in cart."""
    views = window[window[C.event_type] == EventType.view.value]
    flagged = {}
    counts = views.groupby(C.user_id).size()
    for user_id in counts[counts >= COMPARE_RUN].index:
        user_events = window[window[C.user_id] == user_id]
        flagged[user_id] = _compares(user_events)
    return pd.Series(flagged, dtype=bool)


def _compares(user_events: pd.DataFrame) -> bool:
    return compares(user_events[C.event_type].tolist(), user_events[C.category].tolist(),
                    user_events[C.item_id].tolist())


def compares(kinds: Sequence, categories: Sequence, items: Sequence) -> bool:
    """The comparing-products pattern over one user's time-ordered window events (parallel
    sequences: the stream's state and the batch frame give the same answer)."""
    view, cart = EventType.view.value, EventType.add_to_cart.value
    view_idx = [i for i, kind in enumerate(kinds) if kind == view]
    views = len(view_idx)
    run_start = 0
    for k in range(1, views + 1):
        same = k < views and categories[view_idx[k]] == categories[view_idx[run_start]] \
            and categories[view_idx[k]] is not None
        if same:
            continue
        if k - run_start >= COMPARE_RUN:
            run = view_idx[run_start:k]
            carted = {items[i] for i in range(run[0] + 1, len(kinds)) if kinds[i] == cart}
            if len(carted & {items[i] for i in run}) >= COMPARE_CARTS:
                return True
        run_start = k
    return False


def _empty() -> pd.DataFrame:
    return pd.DataFrame({C.user_id: pd.Series(dtype=object), "recent_items": [],
                         "avg_view_price_10m": [], "top_category_30m": [],
                         "cart_abandonment_risk": [], "comparing_products": [],
                         "last_event_ts": [], FEATURE_TIMESTAMP: []})
