"""Event frames as the drift report sees them."""
from __future__ import annotations

import pandas as pd

from recsys.core.data.columns import Columns
from recsys.monitoring.config import DriftConfig

C = Columns


def monitoring_frame(events: pd.DataFrame, config: DriftConfig) -> pd.DataFrame:
    """The configured columns of canonical events; `top_category` is the category's root."""
    frame = events.copy()
    if "top_category" not in frame.columns and C.category in frame.columns:
        frame["top_category"] = frame[C.category].astype(object).str.split(".").str[0]
    columns = config.numerical_columns + config.categorical_columns
    for column in columns:
        if column not in frame.columns:
            frame[column] = None
    out = frame[columns].copy()
    for column in config.categorical_columns:
        out[column] = out[column].astype(object).where(out[column].notna(), "(missing)")
        out[column] = out[column].astype(str)
    for column in config.numerical_columns:
        out[column] = pd.to_numeric(out[column], errors="coerce")
    return out


def sample(frame: pd.DataFrame, config: DriftConfig) -> pd.DataFrame:
    if config.sample_size is None or len(frame) <= config.sample_size:
        return frame
    return frame.sample(n=config.sample_size, random_state=config.seed)
