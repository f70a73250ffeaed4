"""Inject realistic bad input into clean events, at configured rates."""
from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.core.data.columns import Columns
from recsys.core.data.synthetic.config import DirtConfig

C = Columns
UNKNOWN_TYPES = np.array(["wishlist_add", "share", "zoom_image"])
FUTURE_DAYS = (30, 400)


def add_dirt(rng: np.random.Generator, events: pd.DataFrame, dirt: DirtConfig,
             now: pd.Timestamp) -> pd.DataFrame:
    """Return events with dirt mixed in (row-level dirt; malformed lines are the writer's)."""
    n = len(events)
    out = events.copy()
    if dirt.missing_price:
        out.loc[_pick(rng, n, dirt.missing_price), C.price] = np.nan
    if dirt.missing_category:
        out.loc[_pick(rng, n, dirt.missing_category), C.category] = None
    if dirt.unknown_event_type:
        rows = _pick(rng, n, dirt.unknown_event_type)
        out.loc[rows, C.event_type] = rng.choice(UNKNOWN_TYPES, size=rows.size)
    if dirt.future_timestamp:
        rows = _pick(rng, n, dirt.future_timestamp)
        shift = pd.to_timedelta(rng.integers(*FUTURE_DAYS, size=rows.size), unit="D")
        out.loc[rows, C.timestamp] = now + shift
    if dirt.duplicates:
        rows = _pick(rng, n, dirt.duplicates)
        exact = out.loc[rows[: rows.size // 2]]
        resent = out.loc[rows[rows.size // 2:]].copy()
        resent[C.event_id] = resent[C.event_id] + "r"
        resent[C.timestamp] = resent[C.timestamp] + pd.to_timedelta(
            rng.integers(1, 20, size=len(resent)), unit="s")
        out = pd.concat([out, exact, resent], ignore_index=True)
        out = out.sort_values(C.timestamp, kind="stable").reset_index(drop=True)
    return out


def _pick(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    count = int(round(n * rate))
    return np.sort(rng.choice(n, size=min(count, n), replace=False))


def malformed_lines(rng: np.random.Generator, count: int, fmt: str, good_lines: list[str],
                    timestamp_field: int | None) -> list[str]:
    """Broken lines for a text format: truncated JSON, wrong field counts, bad timestamps."""
    if count == 0 or not good_lines:
        return []
    picks = rng.choice(len(good_lines), size=count)
    broken = []
    for k, idx in enumerate(picks):
        line = good_lines[idx]
        if fmt == "jsonl":
            broken.append(line[: max(len(line) // 2, 1)])
        elif k % 2 == 0 or timestamp_field is None:
            broken.append(",".join(line.split(",")[:2]))
        else:
            fields = line.split(",")
            fields[timestamp_field] = "not-a-time"
            broken.append(",".join(fields))
    return broken
