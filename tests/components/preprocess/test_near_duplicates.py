"""Near-duplicate removal by codes and positions gives the rows the sorting definition
gives, whatever order the events come in."""
import numpy as np
import pandas as pd
import pytest

from recsys.components.preprocess.clean import (
    _drop_near_duplicates_sorting,
    drop_near_duplicates,
)


def bursty_events(n: int, seed: int, unit: str = "ms") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    times = rng.integers(0, 600, n) * {"ms": 1_000, "ns": 1_000_000_000}[unit]
    return pd.DataFrame({
        "event_id": [f"e{i:05d}" for i in rng.permutation(n)],
        "user_id": rng.choice(["u1", "u2", "u3"], n),
        "item_id": rng.choice(["i1", "i2", None], n, p=[0.45, 0.45, 0.1]),
        "event_type": rng.choice(["view", "cart"], n),
        "timestamp": pd.to_datetime(times, unit=unit, utc=True),
    })


@pytest.mark.parametrize("seed, unit", [(1, "ms"), (2, "ms"), (3, "ns")])
def test_the_same_rows_as_the_sorting_definition(seed, unit):
    events = bursty_events(3_000, seed, unit)
    expected = _drop_near_duplicates_sorting(events, 30)
    got = drop_near_duplicates(events.sample(frac=1, random_state=seed), 30)
    assert 0 < len(got) < len(events)  # bursts were removed, not everything
    pd.testing.assert_frame_equal(got, expected)


def test_a_burst_collapses_to_its_first_event_and_null_items_never_repeat():
    t = pd.Timestamp("2026-01-01", tz="UTC")
    events = pd.DataFrame({
        "event_id": ["a", "b", "c", "d", "e", "f"],
        "user_id": ["u"] * 6,
        "item_id": ["i", "i", "i", "i", None, None],
        "event_type": ["view"] * 6,
        "timestamp": [t, t + pd.Timedelta(seconds=10), t + pd.Timedelta(seconds=20),
                      t + pd.Timedelta(seconds=80), t, t + pd.Timedelta(seconds=1)],
    })
    kept = drop_near_duplicates(events, 30)
    # b and c follow their predecessor within 30 s (c is 10 s after b); d is 60 s after c
    assert list(kept["event_id"]) == ["a", "e", "f", "d"]
