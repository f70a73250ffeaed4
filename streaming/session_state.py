"""Incremental session features per user: the definitions of
feature_repo/features/session_features.py kept on a small per-user state, so that a stream
gives the same values as the batch form.

Features are as of the user's newest event T (`last_event_ts`), except
`cart_abandonment_risk`, which is also re-evaluated when the processor's event-time watermark
passes an open cart's deadline (a cart is abandoned exactly when nothing else happens).

State (JSON-serialisable, bounded):
- `items` / `item_ts`: up to 50 item ids and their newest interaction times, oldest first
  (parallel lists, so finding an item is one C-level `list.index`);
- `window`: events with ts > T - 30 min - lateness as [event_id, ts, type, item, category,
  price], at most `MAX_WINDOW_EVENTS` (the newest) - also what makes a replayed event a
  no-op: its id is still in the window;
- `last_purchase`, `carts` (add_to_cart times after the last purchase), `last_ts`.
Events older than T - `lateness` are counted as late and not applied.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from operator import itemgetter

from recsys.core.data.columns import Columns, EventType
from recsys.feature_repo.features.session_features import (
    ABANDON_AFTER,
    CATEGORY_WINDOW,
    COMPARE_CARTS,
    COMPARE_RUN,
    COMPARE_WINDOW,
    PRICE_WINDOW,
    RECENT_ITEMS,
    compares,
)

C = Columns
MS = 1000
PRICE_MS = int(PRICE_WINDOW.total_seconds() * MS)
CATEGORY_MS = int(CATEGORY_WINDOW.total_seconds() * MS)
COMPARE_MS = int(COMPARE_WINDOW.total_seconds() * MS)
ABANDON_MS = int(ABANDON_AFTER.total_seconds() * MS)
MAX_OPEN_CARTS = 500
MAX_WINDOW_EVENTS = 1_000
VIEW, CART, PURCHASE = (EventType.view.value, EventType.add_to_cart.value,
                        EventType.purchase.value)
event_time = itemgetter(C.timestamp)
"""A row's event time (epoch ms)."""
_entry_time = itemgetter(1)


@dataclass
class ApplyResult:
    applied: int = 0
    duplicates: int = 0
    late: int = 0


def new_state() -> dict:
    return {"items": [], "item_ts": [], "window": [], "last_purchase": None, "carts": [],
            "last_ts": None}


def upgrade_state(state: dict) -> dict:
    """A state stored by an earlier version (`items` as [item_id, ts] pairs) in today's form."""
    if "item_ts" not in state:
        pairs = state.get("items", [])
        state["items"] = [item for item, _ in pairs]
        state["item_ts"] = [ts for _, ts in pairs]
    return state


def apply_events(state: dict, rows: list[dict], lateness_ms: int,
                 max_window: int = MAX_WINDOW_EVENTS) -> ApplyResult:
    """Fold one user's new rows (any order) into `state`; idempotent per event_id (within
    the window). The window keeps at most `max_window` entries, the newest: a user sending
    thousands of events in half an hour (a bot, a load test) cannot grow its state without
    bound; their window features are then computed over those newest entries."""
    result = ApplyResult()
    seen = {entry[0] for entry in state["window"]}
    for row in sorted(rows, key=event_time):
        event_id, ts = row[C.event_id], int(row[C.timestamp])
        if event_id in seen:
            result.duplicates += 1
            continue
        last_ts = state["last_ts"]
        if last_ts is not None and ts < last_ts - lateness_ms:
            result.late += 1
            continue
        seen.add(event_id)
        _apply(state, row, event_id, ts)
        result.applied += 1
    _prune(state, lateness_ms, max_window)
    return result


def _apply(state: dict, row: dict, event_id: str, ts: int) -> None:
    kind, item = row[C.event_type], row[C.item_id]
    price = row.get(C.price)
    window = state["window"]
    entry = [event_id, ts, kind, item, row.get(C.category),
             None if price is None or price != price else float(price)]
    # keep the window in event-time order; equal times keep arrival order
    if not window or ts >= window[-1][1]:
        window.append(entry)
    else:
        window.insert(bisect.bisect_right(window, ts, key=_entry_time), entry)
    _remember_item(state, item, ts)
    if kind == PURCHASE:
        last_purchase = state["last_purchase"]
        if last_purchase is None or ts > last_purchase:
            state["last_purchase"] = last_purchase = ts
        state["carts"] = [c for c in state["carts"] if c > last_purchase]
    elif kind == CART and (state["last_purchase"] is None or ts > state["last_purchase"]):
        bisect.insort(state["carts"], ts)
        del state["carts"][MAX_OPEN_CARTS:]
    last_ts = state["last_ts"]
    if last_ts is None or ts > last_ts:
        state["last_ts"] = ts


def _remember_item(state: dict, item: str, ts: int) -> None:
    items, times = state["items"], state["item_ts"]
    if items and ts >= times[-1]:  # in order (the common case): move or append to the end
        if items[-1] == item:
            times[-1] = ts
            return
        if item in items:
            index = items.index(item)
            del items[index], times[index]
        items.append(item)
        times.append(ts)
        del items[:-RECENT_ITEMS], times[:-RECENT_ITEMS]
        return
    if item in items:
        index = items.index(item)
        if times[index] > ts:
            return
        del items[index], times[index]
    elif len(items) >= RECENT_ITEMS and ts < times[0]:
        return  # older than the 50 newest distinct items
    position = bisect.bisect_right(times, ts)
    items.insert(position, item)
    times.insert(position, ts)
    del items[:-RECENT_ITEMS], times[:-RECENT_ITEMS]


def _prune(state: dict, lateness_ms: int, max_window: int) -> None:
    if state["last_ts"] is None:
        return
    horizon = state["last_ts"] - max(CATEGORY_MS, COMPARE_MS, PRICE_MS) - lateness_ms
    window = state["window"]  # in event-time order: what goes is a prefix
    del window[:max(len(window) - max_window,
                    bisect.bisect_right(window, horizon, key=_entry_time))]


def features(state: dict, watermark_ms: int | None = None) -> dict:
    """The user_session feature values of a state (see the module docstring for `as of`)."""
    as_of = state["last_ts"]  # the newest event: every window entry is at or before it
    window = state["window"]  # in event-time order: each feature's window is a suffix
    prices = [e[5] for e in _since(window, as_of - PRICE_MS) if e[2] == VIEW and e[5] is not None]
    return {
        "recent_items": list(state["items"]),
        "avg_view_price_10m": sum(prices) / len(prices) if prices else None,
        "top_category_30m": _top_category(_since(window, as_of - CATEGORY_MS)),
        "cart_abandonment_risk": cart_risk(state, watermark_ms),
        "comparing_products": _comparing(_since(window, as_of - COMPARE_MS)),
        "last_event_ts": as_of,
    }


def _since(window: list, after_ms: int) -> list:
    """The entries of a time-ordered window later than `after_ms`."""
    if not window or window[0][1] > after_ms:
        return window
    return window[bisect.bisect_right(window, after_ms, key=_entry_time):]


def cart_risk(state: dict, watermark_ms: int | None = None) -> bool:
    if not state["carts"]:
        return False
    now = max(state["last_ts"], watermark_ms or state["last_ts"])
    return state["carts"][0] <= now - ABANDON_MS


def cart_deadline(state: dict) -> int | None:
    """Event time at which the oldest open cart turns into an abandonment risk."""
    return state["carts"][0] + ABANDON_MS if state["carts"] else None


def _top_category(window: list) -> str | None:
    """The category with the most entries, ties to the one seen last (the window is in
    event-time order, so an entry's time is its category's latest so far)."""
    stats: dict[str, list[int]] = {}
    for entry in window:
        category = entry[4]
        if category is None:
            continue
        count_last = stats.get(category)
        if count_last is None:
            stats[category] = [1, entry[1]]
        else:
            count_last[0] += 1
            count_last[1] = entry[1]
    if not stats:
        return None
    return max(stats.items(), key=lambda kv: (kv[1][0], kv[1][1]))[0]


def _comparing(window: list) -> bool:
    # the pattern needs a run of COMPARE_RUN views and COMPARE_CARTS distinct items carted
    # after it: most windows fail these counts, and they cost one pass instead of `compares`
    views = carts = 0
    for entry in window:
        kind = entry[2]
        if kind == VIEW:
            views += 1
        elif kind == CART:
            carts += 1
    if views < COMPARE_RUN or carts < COMPARE_CARTS:
        return False
    return compares([e[2] for e in window], [e[4] for e in window], [e[3] for e in window])
