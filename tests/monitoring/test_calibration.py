import numpy as np
import pandas as pd
import pytest

from recsys.monitoring.calibration import column_distance, noise_floors


def test_distances_match_hand_computed_values():
    ref = pd.Series(["a"] * 50 + ["b"] * 50)
    cur = pd.Series(["a"] * 100)
    # JS distance between (1/2, 1/2) and (1, 0), natural log
    expected = np.sqrt(0.5 * (0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25))
                       + 0.5 * (1.0 * np.log(1.0 / 0.75)))
    assert column_distance(ref, cur, numeric=False) == pytest.approx(expected)
    assert column_distance(pd.Series([0.0, 2.0]), pd.Series([1.0, 3.0]), numeric=True) == \
        pytest.approx(1.0)  # shift of 1 over a std of 1


def test_small_clustered_windows_get_higher_floors_than_large_ones():
    rng = np.random.default_rng(0)
    sessions = np.repeat(np.arange(2_000), 10)  # 10 events per session share a device
    device = np.repeat(rng.choice(["mobile", "desktop", "tablet"], 2_000, p=[.6, .3, .1]), 10)
    frame = pd.DataFrame({"device_type": device})
    ids = pd.Series(sessions.astype(str))
    small = noise_floors(frame, ids, current_rows=300, numeric=set())["device_type"]
    large = noise_floors(frame, ids, current_rows=5_000, numeric=set())["device_type"]
    assert small > 0.05 > large
