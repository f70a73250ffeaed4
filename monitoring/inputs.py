"""Read the two sides of a drift comparison: event files in any supported layout, or
canonical Parquet from the lake (a file or a folder of them)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from recsys.core.data.readers import read_source
from recsys.core.errors import NotFoundError


def load_events(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"no events at {path}")
    parquet = [path] if path.suffix == ".parquet" else sorted(path.rglob("*.parquet")) \
        if path.is_dir() else []
    if parquet:
        return pd.concat([pd.read_parquet(p) for p in parquet], ignore_index=True)
    return read_source(path).events
