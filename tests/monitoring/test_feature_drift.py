import numpy as np
import pandas as pd
import pytest

from recsys.components.features.tables import ITEM_STATS_COLUMNS, write_snapshot
from recsys.core.data.lake import Lake
from recsys.monitoring.feature_drift import feature_drift

T1, T2 = pd.Timestamp("2026-10-01T00:00:00Z"), pd.Timestamp("2026-10-08T00:00:00Z")


def items(as_of, price_factor, seed):
    rng = np.random.default_rng(seed)
    n = 2_000
    return pd.DataFrame({
        "item_id": [f"i{k}" for k in range(n)], "views": rng.poisson(40, n),
        "unique_users": rng.poisson(30, n), "purchases": rng.poisson(2, n),
        "conversion_rate": rng.uniform(0, .1, n),
        "avg_price": rng.lognormal(3, .5, n) * price_factor,
        "price_band": rng.choice(["budget", "mid", "premium", "luxury"], n),
        "popularity_score": rng.exponential(4, n), "category": rng.choice(["a", "b"], n),
        "brand": rng.choice(["x", "y"], n), "feature_timestamp": as_of})


def check_price_doubling_is_found(lake: Lake):
    write_snapshot(lake, "item_stats", items(T1, 1.0, 0), ITEM_STATS_COLUMNS)
    write_snapshot(lake, "item_stats", items(T2, 2.0, 1), ITEM_STATS_COLUMNS)
    result = feature_drift(lake, trained_at=T1 + pd.Timedelta(hours=1))
    stats = result["item_stats"]
    assert stats["reference_snapshot"] == "as_of=20261001T000000.parquet"
    assert stats["current_snapshot"] == "as_of=20261008T000000.parquet"
    assert stats["status"] == "computed" and stats["top_drifted_columns"][0] == "avg_price"
    assert not stats["columns"]["views"]["drifted"]
    assert result["user_stats"]["status"].startswith("not computed")


def test_item_prices_doubling_between_snapshots_is_found(tmp_path):
    check_price_doubling_is_found(Lake(str(tmp_path / "lake")))


@pytest.mark.integration
def test_feature_drift_reads_snapshots_from_an_s3_lake(s3_lake):
    check_price_doubling_is_found(s3_lake)
