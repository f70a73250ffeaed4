"""Events in time order: by timestamp, ties broken by event id.

The lake's readers return events in this order, and the batch steps that need it check for
it before sorting: a sort of a million rows by a string key costs seconds (pandas
factorizes and sorts every distinct id), the check a few milliseconds.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recsys.core.data.columns import Columns

C = Columns
TIME_ORDER = [C.timestamp, C.event_id]


def is_in_time_order(frame: pd.DataFrame) -> bool:
    """Whether rows are sorted by (timestamp, event_id), with no null in either column
    (a single row always is)."""
    if len(frame) < 2:
        return True
    times = frame[C.timestamp]
    if times.isna().any() or frame[C.event_id].isna().any():
        return False
    ticks = epoch_ticks(times)
    if ticks is None:
        return False
    stamps = ticks[0]
    if np.any(stamps[1:] < stamps[:-1]):
        return False
    ties = np.flatnonzero(stamps[1:] == stamps[:-1])
    if not len(ties):
        return True
    ids = frame[C.event_id].to_numpy(dtype=object)
    try:
        return bool(np.all(ids[ties + 1] >= ids[ties]))
    except TypeError:  # ids of mixed types: let pandas order them
        return False


def epoch_ticks(times: pd.Series) -> tuple[np.ndarray, int] | None:
    """(the times as integers in their own unit, that unit's ticks per second), exact
    whatever the unit (ms in the lake, ns in frames built in memory); None when the
    column does not hold datetimes."""
    values = times.array
    if not isinstance(values, pd.arrays.DatetimeArray):
        return None
    return values.asi8, TICKS_PER_SECOND[values.unit]


TICKS_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def in_time_order(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` sorted by (timestamp, event_id) with a fresh index: returned as it is when
    already in that order, else sorted (stable, nulls last)."""
    if is_in_time_order(frame):
        if isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0 \
                and frame.index.step == 1:
            return frame
        out = frame.copy(deep=False)
        out.index = pd.RangeIndex(len(out))
        return out
    return frame.sort_values(TIME_ORDER, kind="stable").reset_index(drop=True)


def time_order_indices(table: pa.Table) -> np.ndarray | None:
    """The row order that sorts an Arrow table by (timestamp, event_id) (stable, nulls
    last), or None when its rows are already in that order. Sorting the indices in Arrow
    takes milliseconds; the caller moves rows once, after conversion."""
    if table.num_rows < 2:
        return None
    order = pc.sort_indices(table, [(C.timestamp, "ascending"), (C.event_id, "ascending")]
                            ).to_numpy()
    if np.array_equal(order, np.arange(len(order))):
        return None
    return order
