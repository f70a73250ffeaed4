"""A small simulated experiment as the lake would hold it: exposures (lists shown, with
their variant) and the events users answered with (clicks naming the list, carts and
purchases of shown items, some outside the window), plus a pre-period."""
from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.experiments.assignment import Assigner

START = pd.Timestamp("2026-11-01", tz="UTC")


def simulate(definition, users: int, ctr: dict[str, float], buy: dict[str, float],
             seed: int = 0, days: int = 7, start: pd.Timestamp = START):
    """Returns (exposures, events, pre_events). Each user sees 1-6 lists of 5 items; each
    list is clicked with the variant's CTR times the user's own propensity; a clicked item
    is bought with probability `buy` within the attribution window."""
    START = start  # noqa: N806  (the module's default start, or the experiment's)
    rng = np.random.default_rng(seed)
    assigner = Assigner(definition)
    exposures, events, pre = [], [], []
    for u in range(users):
        user = f"user-{u}"
        variant = assigner.assign(user).variant
        if variant is None:
            continue
        propensity = rng.gamma(4.0, 0.25)
        for _ in range(int(rng.integers(0, 4))):  # pre-period activity, CUPED's covariate
            pre.append((f"pre-{u}-{len(pre)}", user, "i0", "view",
                        START - pd.Timedelta(days=float(rng.uniform(1, 13))), None, None))
        for n in range(int(rng.integers(1, 7))):
            shown_at = START + pd.Timedelta(minutes=float(rng.uniform(0, days * 1440)))
            rec = f"{user}-{n}"
            items = [f"i{int(i)}" for i in rng.choice(500, 5, replace=False)]
            exposures.append((shown_at, user, variant, rec, items))
            if rng.random() < min(1.0, ctr[variant] * propensity):
                clicked = items[0]
                events.append((f"c-{rec}", user, clicked, "click",
                               shown_at + pd.Timedelta(seconds=20), None, rec))
                if rng.random() < buy[variant]:
                    events.append((f"p-{rec}", user, clicked, "purchase",
                                   shown_at + pd.Timedelta(hours=2),
                                   float(rng.uniform(10, 100)), None))
    columns = ["event_id", "user_id", "item_id", "event_type", "timestamp", "price",
               "recommendation_id"]
    exposures = pd.DataFrame(exposures, columns=["timestamp", "user_id", "variant",
                                                 "recommendation_id", "item_ids"])
    return (exposures, pd.DataFrame(events, columns=columns),
            pd.DataFrame(pre, columns=columns))
