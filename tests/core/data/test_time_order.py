"""Time order (timestamp, then event id): detected without sorting, restored when lost."""
import numpy as np
import pandas as pd
import pyarrow as pa

from recsys.core.data.time_order import in_time_order, is_in_time_order, time_order_indices


def events(times, ids, unit="ms"):
    stamps = pd.to_datetime(times, unit=unit, utc=True)
    return pd.DataFrame({"timestamp": stamps, "event_id": ids, "n": range(len(ids))})


def test_ties_are_ordered_by_event_id():
    frame = events([5, 5, 7], ["b", "a", "c"])
    assert not is_in_time_order(frame)
    assert list(in_time_order(frame)["event_id"]) == ["a", "b", "c"]
    assert is_in_time_order(events([5, 5, 7], ["a", "b", "c"]))


def test_a_sorted_frame_comes_back_as_it_is_with_a_fresh_index():
    frame = events([1, 2, 3], ["x", "y", "z"])
    assert in_time_order(frame) is frame
    shifted = frame.set_axis([10, 11, 12])
    out = in_time_order(shifted)
    assert list(out.index) == [0, 1, 2] and list(out["n"]) == [0, 1, 2]
    assert list(shifted.index) == [10, 11, 12]  # the caller's frame is untouched


def test_nanoseconds_are_compared_exactly_not_rounded_to_milliseconds():
    # 1.0005 ms before 1.0001 ms: equal in ms, so only the exact unit sees the disorder
    frame = events([1_000_500, 1_000_100], ["a", "b"], unit="ns")
    assert not is_in_time_order(frame)
    assert list(in_time_order(frame)["event_id"]) == ["b", "a"]


def test_null_times_go_last():
    frame = pd.DataFrame({"timestamp": pd.to_datetime([None, 3, 1], unit="ms", utc=True),
                          "event_id": ["n", "c", "a"]})
    assert not is_in_time_order(frame)
    assert list(in_time_order(frame)["event_id"]) == ["a", "c", "n"]


def test_arrow_and_pandas_agree_on_shuffled_ids_with_many_ties():
    rng = np.random.default_rng(3)
    times = rng.integers(0, 1000, 20_000)  # many ties
    ids = [f"e{i}" for i in rng.permutation(20_000)]
    frame = events(times, ids)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    order = time_order_indices(table)
    from_arrow = table.to_pandas().take(order).reset_index(drop=True)
    from_pandas = in_time_order(frame)
    pd.testing.assert_frame_equal(from_arrow, from_pandas)
    assert is_in_time_order(from_arrow)
    assert time_order_indices(pa.Table.from_pandas(from_arrow, preserve_index=False)) is None
