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

A user seen in two variants (a broken assignment or a changed definition) is dropped
from every metric and counted in `crossovers`: the sample-ratio check then shows it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.core.columns import Columns, EventType

C = Columns
OUTCOME_COLUMNS = ["variant", "exposures", "clicked_lists", "clicks", "carts", "orders",
                   "revenue", "pre_events", "pre_revenue"]


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


def user_outcomes(exposures: pd.DataFrame, events: pd.DataFrame, start: pd.Timestamp,
                  attribution_hours: float, pre_events: pd.DataFrame | None = None
                  ) -> UserOutcomes:
    """`exposures`: timestamp, user_id, variant, recommendation_id, item_ids (lists).
    `events`: the canonical event columns after the start; `pre_events`: before it."""
    if exposures.empty:
        return UserOutcomes(pd.DataFrame(columns=OUTCOME_COLUMNS), 0, 0, 0)
    variants = exposures.groupby(C.user_id, sort=False)["variant"].agg(["first", "nunique"])
    crossed = variants.index[variants["nunique"] > 1]
    if len(crossed):
        exposures = exposures[~exposures[C.user_id].isin(crossed)]
    users = pd.DataFrame({"variant": variants.loc[~variants.index.isin(crossed), "first"]})
    users["exposures"] = exposures.groupby(C.user_id, sort=False).size()

    clicks = events[(events[C.event_type] == EventType.click.value)
                    & events[C.recommendation_id].notna()]
    owners = exposures[[C.recommendation_id, C.user_id]].drop_duplicates(C.recommendation_id)
    matched = clicks[[C.recommendation_id]].merge(owners, on=C.recommendation_id, how="inner")
    users["clicks"] = matched.groupby(C.user_id, sort=False).size()
    users["clicked_lists"] = matched.drop_duplicates(C.recommendation_id) \
        .groupby(C.user_id, sort=False).size()

    attributed = _attributed(exposures, events, attribution_hours)
    carts = attributed[attributed[C.event_type] == EventType.add_to_cart.value]
    purchases = attributed[attributed[C.event_type] == EventType.purchase.value]
    users["carts"] = carts.groupby(C.user_id, sort=False).size()
    users["orders"] = purchases.groupby(C.user_id, sort=False).size()
    users["revenue"] = purchases.groupby(C.user_id, sort=False)[C.price].sum(min_count=1)

    pre = pre_events if pre_events is not None else events.iloc[:0]
    pre = pre[pre[C.timestamp] < start]
    users["pre_events"] = pre.groupby(C.user_id, sort=False).size()
    pre_purchases = pre[pre[C.event_type] == EventType.purchase.value]
    users["pre_revenue"] = pre_purchases.groupby(C.user_id, sort=False)[C.price].sum()
    numeric = OUTCOME_COLUMNS[1:]
    users[numeric] = users[numeric].astype(float).fillna(0.0)
    return UserOutcomes(users[OUTCOME_COLUMNS], len(crossed),
                        int(len(clicks) - len(matched)),
                        int(purchases[C.price].isna().sum()))


def _attributed(exposures: pd.DataFrame, events: pd.DataFrame,
                attribution_hours: float) -> pd.DataFrame:
    """Carts and purchases of shown items, each joined to its last exposure in the window.
    Only the exposures of users who carted or bought are exploded into items."""
    wanted = events[events[C.event_type].isin([EventType.add_to_cart.value,
                                               EventType.purchase.value])
                    & events[C.user_id].isin(exposures[C.user_id])]
    if wanted.empty:
        return wanted.assign(exposed_at=pd.Series(dtype="datetime64[ms, UTC]"))
    shown = exposures[exposures[C.user_id].isin(wanted[C.user_id])][
        [C.user_id, C.timestamp, "item_ids"]].explode("item_ids")
    shown = shown.rename(columns={"item_ids": C.item_id, C.timestamp: "exposed_at"}) \
        .dropna(subset=[C.item_id])
    joined = wanted[[C.event_id, C.user_id, C.item_id, C.event_type, C.timestamp, C.price]] \
        .merge(shown, on=[C.user_id, C.item_id], how="inner")
    window = pd.Timedelta(hours=attribution_hours)
    delay = joined[C.timestamp] - joined["exposed_at"]
    joined = joined[(delay >= pd.Timedelta(0)) & (delay <= window)]
    return joined.sort_values("exposed_at").drop_duplicates(C.event_id, keep="last")


def daily_ctr(exposures: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Lists shown and clicked per day and variant (the report's time series)."""
    if exposures.empty:
        return pd.DataFrame(columns=["day", "variant", "exposures", "clicked", "ctr"])
    clicked_ids = set(events.loc[events[C.event_type] == EventType.click.value,
                                 C.recommendation_id].dropna())
    frame = pd.DataFrame({
        "day": exposures[C.timestamp].dt.floor("D"), "variant": exposures["variant"],
        "clicked": exposures[C.recommendation_id].isin(clicked_ids).to_numpy(np.int64)})
    daily = frame.groupby(["day", "variant"]).agg(exposures=("clicked", "size"),
                                                  clicked=("clicked", "sum")).reset_index()
    daily["ctr"] = daily["clicked"] / daily["exposures"]
    return daily
