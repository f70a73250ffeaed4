"""Data sets for offline benchmarks, as interactions plus item metadata.

- `movielens`: ratings.csv (userId,movieId,rating,timestamp) or u.data (tab-separated);
  a sibling movies.csv (movieId,title,genres) / u.item gives title and genres (category).
- any event layout `extract` reads (rees46, retailrocket, jsonl, ...): events are cleaned,
  weighted and aggregated by the pipeline's own preprocess code.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recsys.core.columns import Columns
from recsys.core.errors import ConfigError, SchemaError

C = Columns


@dataclass
class RatingsData:
    name: str
    interactions: pd.DataFrame
    """user_id, item_id, rating, weight (1 per rating), timestamp."""
    items: pd.DataFrame | None
    """item_id, title, category (genres)."""


def load_movielens(path: str | Path) -> RatingsData:
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    csv, tab = folder / "ratings.csv", folder / "u.data"
    if path.is_file():
        source = path
    elif csv.exists():
        source = csv
    elif tab.exists():
        source = tab
    else:
        raise ConfigError(f"movielens: no ratings.csv or u.data in {folder}")
    if source.suffix == ".csv":
        raw = pd.read_csv(source, dtype={"userId": str, "movieId": str})
        expected = {"userId", "movieId", "rating", "timestamp"}
        if not expected <= set(raw.columns):
            raise SchemaError(f"movielens: {source} lacks columns "
                              f"{sorted(expected - set(raw.columns))}")
        raw = raw.rename(columns={"userId": C.user_id, "movieId": C.item_id})
    else:
        raw = pd.read_csv(source, sep="\t", names=[C.user_id, C.item_id, "rating", "timestamp"],
                          dtype={C.user_id: str, C.item_id: str})
    interactions = pd.DataFrame({
        C.user_id: raw[C.user_id].astype(str), C.item_id: raw[C.item_id].astype(str),
        C.rating: raw["rating"].astype(float), C.weight: 1.0,
        C.timestamp: pd.to_datetime(raw["timestamp"], unit="s", utc=True)})
    return RatingsData(folder.name, interactions, _movielens_items(folder))


def _movielens_items(folder: Path) -> pd.DataFrame | None:
    movies = folder / "movies.csv"
    if movies.exists():
        raw = pd.read_csv(movies, dtype={"movieId": str})
        return pd.DataFrame({C.item_id: raw["movieId"], "title": raw["title"],
                             C.category: raw["genres"].str.replace("(no genres listed)", "",
                                                                   regex=False)})
    return None
