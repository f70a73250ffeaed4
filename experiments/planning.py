"""Before a test starts: how many users each variant needs and how many days that takes.

The baseline comes from the shop's own recent traffic, not from a guess: the lists served in
the last `history_days` (the request log, whatever variant served them) and the clicks,
carts and purchases that followed, turned into one row per user exactly as an analysis
does (`outcomes.user_outcomes`). For each planned metric that gives the control's mean and
its per-user variance (the delta method for ratio metrics such as CTR), and so the users
per variant a fixed-horizon two-sided z-test needs to detect `target_lift` with `power`.

- Alpha is split over the comparisons the analysis will make (each treatment against the
  control, per metric): a Bonferroni bound, which Holm's correction never needs more than.
- Users per day: the distinct users of the history accumulate day by day; beyond the
  history the last day's new-user rate is carried forward (a conservative straight line:
  returning users are not counted twice). The smallest variant's share of all users
  (coverage and holdout applied) sets the pace.
- A sequential design spends its alpha over the looks and needs a few percent more users
  at its last look than this fixed-horizon figure.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from recsys.core.data.columns import Columns
from recsys.core.data.lake import Lake
from recsys.experiments import stats
from recsys.experiments.analysis import estimate, with_derived
from recsys.experiments.assignment import Assigner
from recsys.experiments.definition import ExperimentDefinition
from recsys.experiments.lake_inputs import read_events, read_served
from recsys.experiments.outcomes import user_outcomes

C = Columns


class NoHistoryError(ValueError):
    """No served lists in the history window: nothing to plan from."""


def plan_from_lake(lake: Lake, definition: ExperimentDefinition, now: datetime,
                   history_days: float = 14.0) -> dict:
    start = now - timedelta(days=history_days)
    served = read_served(lake, start, now)
    if served.num_rows == 0:
        raise NoHistoryError(
            f"no served lists in the request log from {start:%Y-%m-%d %H:%M} to "
            f"{now:%Y-%m-%d %H:%M}: serve the champion with the request log on "
            "(log_requests) for a while, or widen --history-days")
    events = read_events(lake, start, now)
    outcomes = user_outcomes(served, events, pd.Timestamp(start), definition.attribution_hours)
    first_seen = pd.Series(served[C.timestamp].to_pandas().to_numpy(),
                           index=served[C.user_id].to_pandas()).groupby(level=0).min()
    return plan(outcomes.users, first_seen, definition, pd.Timestamp(start), history_days)


def plan(users: pd.DataFrame, first_seen: pd.Series, definition: ExperimentDefinition,
         start: pd.Timestamp, history_days: float) -> dict:
    """`users`: one row per user (`outcomes.OUTCOME_COLUMNS`); `first_seen`: each user's
    first served list."""
    users = with_derived(users)
    shares = Assigner(definition).expected_shares()
    smallest = min(shares.values())
    metrics = definition.metrics
    comparisons = (len(definition.variants) - 1) * len(metrics)
    alpha = definition.alpha / comparisons
    arrivals = _cumulative_users(first_seen, start, history_days)
    planned = {}
    for metric in metrics:
        base = estimate(users, metric)
        signal = math.isfinite(base.mean) and math.isfinite(base.unit_variance) \
            and base.unit_variance > 0 and base.mean != 0
        needed = stats.users_needed(base.unit_variance, base.mean, definition.target_lift,
                                    alpha, definition.power) if signal else 0
        if not signal:
            planned[metric] = {"baseline": base.mean if math.isfinite(base.mean) else None,
                               "unit_variance": None,
                               "users_per_variant": None, "days": None,
                               "why": "no signal in the history (no users or no variance)"}
            continue
        per_variant = max(needed, definition.minimum_users)
        days = _days_to_reach(arrivals, per_variant / smallest)
        planned[metric] = {"baseline": base.mean, "unit_variance": base.unit_variance,
                           "users_per_variant": int(per_variant),
                           "users_in_all": int(math.ceil(per_variant / smallest)),
                           "days": days}
    primary = planned[definition.primary_metric]
    return {
        "experiment": definition.name, "target_lift": definition.target_lift,
        "alpha": definition.alpha, "alpha_per_comparison": alpha, "comparisons": comparisons,
        "power": definition.power, "shares": shares, "smallest_share": smallest,
        "history": {"from": start.isoformat(), "days": history_days,
                    "users": int(len(users)), "served_lists": int(users["exposures"].sum()),
                    "new_users_per_day_at_end": arrivals["rate"]},
        "metrics": planned,
        "days_for_primary": primary["days"],
        "sequential": definition.sequential,
    }


def _cumulative_users(first_seen: pd.Series, start: pd.Timestamp, history_days: float) -> dict:
    """Distinct users by whole day of the history, and the last day's arrival rate."""
    whole_days = max(1, int(math.floor(history_days)))
    age_days = ((pd.to_datetime(first_seen, utc=True) - start).dt.total_seconds()
                / 86_400).to_numpy()
    counts = np.array([int((age_days < d).sum()) for d in range(1, whole_days + 1)])
    counts[-1] = len(first_seen)  # a fractional last day: everyone seen in the window
    rate = float(counts[-1] - counts[-2]) if len(counts) > 1 else float(counts[-1])
    return {"by_day": counts, "rate": rate}


def _days_to_reach(arrivals: dict, users: float) -> int | None:
    """Whole days until `users` distinct users have come (None: never at the last rate)."""
    by_day = arrivals["by_day"]
    reached = np.flatnonzero(by_day >= users)
    if reached.size:
        return int(reached[0]) + 1
    if arrivals["rate"] <= 0:
        return None
    return len(by_day) + int(math.ceil((users - by_day[-1]) / arrivals["rate"]))

