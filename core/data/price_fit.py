"""Price fit: how an item's price compares with what a shopper usually spends."""
from __future__ import annotations

import pandas as pd


def price_to_user_avg_spend(avg_price, avg_spend):
    """An item's price over the shopper's average spend; null when the shopper never bought
    anything (never a made-up number). One definition for Feast's on-demand `price_fit`
    view, the serving path and the feature re-ranker."""
    spend = pd.to_numeric(pd.Series(avg_spend), errors="coerce").astype(float)
    price = pd.to_numeric(pd.Series(avg_price), errors="coerce").astype(float).to_numpy()
    return price / spend.where(spend > 0).to_numpy()
