"""From exposures and events to one row per user: what each user saw and did.

- An exposure is a list served inside the experiment (the request log's rows that name
  it), with its `recommendation_id`, variant and items.
- A click counts for the exposure whose `recommendation_id` it names (the collector's
  `properties.recommendation_id`); a list is *clicked* when at least one click names it.
- A cart or purchase of item `i` by user `u` at time `t` is attributed to the last
  exposure of `u` that showed `i` within `attribution_hours` before `t` (last touch);
  revenue is the purchase's price. Unattributed purchases are not the experiment's.
- Pre-period activity (events and revenue in the `pre_days` before the start) is the
  CUPED covariate.
- Dwell time of a click is the time from the click to the same user's next event (other
  than the view of the clicked item, the page the click opened), when that comes within
  `DWELL_LIMIT` (a session's inactivity gap). A click followed by nothing within it has no
  dwell time: how long a user stayed on the last page of a visit is not in the events
  (time-to-next-event, as web analytics measure time on page).

A user seen in two variants (a broken assignment or a changed definition) is dropped
from every metric and counted in `crossovers`: the sample-ratio check then shows it.

Exposures stay an Arrow table: users, variants and lists are integer-coded in Arrow and
counted with numpy, and only the lists of users who carted or bought are flattened into
items - 10M exposures of 10 items never become 100M Python objects.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recsys.core.data.columns import Columns, EventType
from recsys.core.data.time_order import in_time_order

C = Columns
OUTCOME_COLUMNS = ["variant", "exposures", "clicked_lists", "clicks", "carts", "orders",
                   "revenue", "dwell_seconds", "dwell_clicks", "pre_events", "pre_revenue"]
MS_PER_DAY = 86_400_000
DWELL_LIMIT_MS = 30 * 60_000
"""A click's next event later than this ends its visit: no dwell time (the session gap)."""
DWELL_LOOKAHEAD = 8
"""How many of the user's following events are searched for the one that ends a dwell."""


@dataclass
class UserOutcomes:
    users: pd.DataFrame
    """Index user_id; OUTCOME_COLUMNS."""
    crossovers: int
    """Users seen in more than one variant (left out)."""
    unmatched_clicks: int
    """Clicks naming a recommendation_id no exposure of this experiment has."""
    unpriced_purchases: int
    """Attributed purchases without a price (counted as orders, revenue 0)."""
    daily: pd.DataFrame | None = None
    """Lists shown and clicked per day and variant (the report's time series)."""


def as_table(exposures: pa.Table | pd.DataFrame) -> pa.Table:
    if isinstance(exposures, pa.Table):
        return exposures
    frame = exposures.copy()
    frame[C.timestamp] = frame[C.timestamp].dt.floor("ms").astype("datetime64[ms, UTC]")
    return pa.Table.from_pandas(frame, preserve_index=False)


def user_outcomes(exposures: pa.Table | pd.DataFrame, events: pd.DataFrame,
                  start: pd.Timestamp, attribution_hours: float,
                  pre_events: pd.DataFrame | None = None) -> UserOutcomes:
    """`exposures`: timestamp, user_id, variant, recommendation_id, item_ids (lists).
    `events`: the canonical event columns after the start; `pre_events`: before it."""
    table = as_table(exposures)
    if table.num_rows == 0:
        return UserOutcomes(pd.DataFrame(columns=OUTCOME_COLUMNS), 0, 0, 0, _daily_empty())
    user_dictionary = pc.dictionary_encode(table[C.user_id].combine_chunks())
    user_code = user_dictionary.indices.to_numpy()
    users = pd.Index(user_dictionary.dictionary.to_pandas())
    variant_dictionary = pc.dictionary_encode(table["variant"].combine_chunks())
    variant_code = variant_dictionary.indices.to_numpy()
    variant_names = np.array(variant_dictionary.dictionary.to_pylist(), dtype=object)
    n = len(users)

    pairs = np.unique(user_code.astype(np.int64) * 64 + variant_code)
    crossed = np.bincount(pairs // 64, minlength=n) > 1
    user_variant = np.zeros(n, dtype=np.int64)
    user_variant[pairs // 64] = pairs % 64
    kept_rows = ~crossed[user_code]

    counts = {"exposures": np.bincount(user_code[kept_rows], minlength=n)}
    is_click = ((events[C.event_type] == EventType.click.value)
                & events[C.recommendation_id].notna()).to_numpy()
    clicks = events[is_click]
    row = pc.index_in(pa.array(clicks[C.recommendation_id].to_numpy(), pa.string()),
                      value_set=table[C.recommendation_id].combine_chunks())
    valid = row.is_valid().to_numpy(zero_copy_only=False)
    exposure_row = row.fill_null(0).to_numpy().astype(np.int64)
    unmatched = int((~valid).sum())
    counted = valid & kept_rows[exposure_row]  # clicks on this experiment's kept lists
    matched = exposure_row[counted]
    dwell_ms = click_dwell_ms(events, is_click)
    measured = counted & ~np.isnan(dwell_ms)
    dwell_users = user_code[exposure_row[measured]]
    counts["dwell_seconds"] = np.bincount(dwell_users, weights=dwell_ms[measured] / 1000,
                                          minlength=n)
    counts["dwell_clicks"] = np.bincount(dwell_users, minlength=n)
    clicked_rows = np.unique(matched)
    counts["clicks"] = np.bincount(user_code[matched], minlength=n)
    counts["clicked_lists"] = np.bincount(user_code[clicked_rows], minlength=n)

    attributed = _attributed(table, user_code, users, crossed, events, attribution_hours)
    unpriced = 0
    for kind, name in ((EventType.add_to_cart.value, "carts"),
                       (EventType.purchase.value, "orders")):
        rows = attributed[attributed[C.event_type] == kind]
        counts[name] = np.bincount(rows["user_code"], minlength=n)
        if name == "orders":
            prices = rows[C.price].astype(float).fillna(0.0)
            counts["revenue"] = np.bincount(rows["user_code"], weights=prices, minlength=n)
            unpriced = int(rows[C.price].isna().sum())

    pre = pre_events if pre_events is not None else events.iloc[:0]
    pre = pre[pre[C.timestamp] < start]
    pre_code = users.get_indexer(pre[C.user_id])
    known = pre_code >= 0
    counts["pre_events"] = np.bincount(pre_code[known], minlength=n)
    bought = known & (pre[C.event_type] == EventType.purchase.value).to_numpy()
    pre_prices = pre[C.price].astype(float).fillna(0.0).to_numpy()
    counts["pre_revenue"] = np.bincount(pre_code[bought], weights=pre_prices[bought],
                                        minlength=n)

    frame = pd.DataFrame({"variant": variant_names[user_variant],
                          **{k: v.astype(float) for k, v in counts.items()}}, index=users)
    frame.index.name = C.user_id
    frame = frame[~crossed]
    clicked = np.zeros(table.num_rows, dtype=bool)
    clicked[clicked_rows] = True
    daily = _daily(table, variant_code, variant_names, clicked, kept_rows)
    return UserOutcomes(frame[OUTCOME_COLUMNS], int(crossed.sum()), int(unmatched),
                        unpriced, daily)


def click_dwell_ms(events: pd.DataFrame, is_click: np.ndarray) -> np.ndarray:
    """Dwell time (ms) of each click (the rows of `events` where `is_click`), NaN where
    none is known: the time to the user's next later event that is not the view of the
    clicked item, searched among the next DWELL_LOOKAHEAD events, at most DWELL_LIMIT_MS."""
    dwell = np.full(int(is_click.sum()), np.nan)
    if not len(dwell):
        return dwell
    # by user, each user's events in time order: integer sorts on the time-ordered rows (the
    # lake's reader gives them so), not a sort of a million user ids as strings
    timed = in_time_order(events.assign(_row=np.arange(len(events))))
    place = np.empty(len(timed), dtype=np.int64)  # an event's row in `events` -> in `timed`
    place[timed["_row"].to_numpy()] = np.arange(len(timed))
    user_codes = pd.factorize(timed[C.user_id])[0]
    by_user = np.lexsort((np.arange(len(timed)), user_codes))
    ordered = timed.take(by_user)
    rank = np.empty(len(ordered), dtype=np.int64)
    rank[by_user] = np.arange(len(ordered))
    user = user_codes[by_user]
    stamp = ordered[C.timestamp].astype("datetime64[ms, UTC]").astype(np.int64).to_numpy()
    item = ordered[C.item_id].astype(object).to_numpy()
    is_view = (ordered[C.event_type] == EventType.view.value).to_numpy()
    at = rank[place[np.flatnonzero(is_click)]]  # the clicks in the caller's order
    open_ = np.ones(len(at), dtype=bool)
    for step in range(1, DWELL_LOOKAHEAD + 1):
        nxt = np.minimum(at + step, len(ordered) - 1)
        valid = open_ & (at + step < len(ordered)) & (user[nxt] == user[at])
        open_ &= valid  # past the user's last event: no dwell
        later = valid & (stamp[nxt] > stamp[at])
        opened_page = later & is_view[nxt] & (item[nxt] == item[at])
        ends = later & ~opened_page
        gap = (stamp[nxt] - stamp[at]).astype(float)
        found = ends & (gap <= DWELL_LIMIT_MS)
        dwell[found] = gap[found]
        open_ &= ~ends
    return dwell


def _attributed(table: pa.Table, user_code: np.ndarray, users: pd.Index,
                crossed: np.ndarray, events: pd.DataFrame,
                attribution_hours: float) -> pd.DataFrame:
    """Carts and purchases of shown items, each joined to its last exposure in the window
    (columns: event_id, user_code, event_type, price). Only the lists of users who carted
    or bought are flattened into items."""
    wanted = events[events[C.event_type].isin([EventType.add_to_cart.value,
                                               EventType.purchase.value])]
    codes = users.get_indexer(wanted[C.user_id])
    keep = codes >= 0
    keep[keep] = ~crossed[codes[keep]]
    wanted = wanted[keep].assign(user_code=codes[keep])
    empty = pd.DataFrame({C.event_id: [], "user_code": np.array([], np.int64),
                          C.event_type: [], C.price: []})
    if wanted.empty:
        return empty
    is_buyer = np.zeros(len(users), dtype=bool)
    is_buyer[wanted["user_code"].to_numpy()] = True
    rows = np.flatnonzero(is_buyer[user_code])
    lists = table.select(["item_ids", C.timestamp]).take(pa.array(rows))
    items = lists["item_ids"].combine_chunks()
    parent = pc.list_parent_indices(items).to_numpy()
    item_values = np.unique(wanted[C.item_id].dropna().to_numpy().astype(str))
    position = pc.index_in(pc.list_flatten(items), value_set=pa.array(item_values))
    valid = position.is_valid().to_numpy(zero_copy_only=False)
    exposed_ms = lists[C.timestamp].combine_chunks().cast(pa.int64()).to_numpy()
    width = len(item_values)
    shown = pd.DataFrame({
        "key": user_code[rows[parent[valid]]].astype(np.int64) * width
        + position.drop_null().to_numpy(),
        "exposed_ms": exposed_ms[parent[valid]]})
    item_position = np.searchsorted(item_values, wanted[C.item_id].fillna("").astype(str))
    found = (item_position < width) & (item_values[np.minimum(item_position, width - 1)]
                                       == wanted[C.item_id].fillna("").astype(str).to_numpy())
    wanted = wanted[found].assign(key=wanted["user_code"].to_numpy()[found] * width
                                  + item_position[found])
    joined = wanted[[C.event_id, "user_code", "key", C.event_type, C.timestamp, C.price]] \
        .merge(shown, on="key", how="inner")
    delay = joined[C.timestamp].astype("datetime64[ms, UTC]").astype(np.int64) \
        - joined["exposed_ms"]
    window = attribution_hours * 3_600_000
    joined = joined[(delay >= 0) & (delay <= window)]
    if joined.empty:
        return empty
    return joined.sort_values("exposed_ms").drop_duplicates(C.event_id, keep="last")


def _daily(table: pa.Table, variant_code: np.ndarray, variant_names: np.ndarray,
           clicked: np.ndarray, kept_rows: np.ndarray) -> pd.DataFrame:
    day = table[C.timestamp].combine_chunks().cast(pa.int64()).to_numpy() // MS_PER_DAY
    day, variant_code, clicked = day[kept_rows], variant_code[kept_rows], clicked[kept_rows]
    if day.size == 0:
        return _daily_empty()
    first = day.min()
    slot = (day - first) * len(variant_names) + variant_code
    shown = np.bincount(slot)
    hits = np.bincount(slot, weights=clicked)
    present = np.flatnonzero(shown)
    return pd.DataFrame({
        "day": pd.to_datetime((present // len(variant_names) + first) * MS_PER_DAY,
                              unit="ms", utc=True),
        "variant": variant_names[present % len(variant_names)],
        "exposures": shown[present], "clicked": hits[present].astype(np.int64),
        "ctr": hits[present] / shown[present]})


def _daily_empty() -> pd.DataFrame:
    return pd.DataFrame(columns=["day", "variant", "exposures", "clicked", "ctr"])

