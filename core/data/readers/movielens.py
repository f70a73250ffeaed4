"""MovieLens-style explicit ratings (userId,movieId,rating,timestamp) as rating events."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from recsys.core.data.columns import Columns, EventType
from recsys.core.data.readers.base import (
    ReadResult,
    finish,
    read_csv_strings,
    synthesize_event_ids,
    timestamps_from_epoch,
)

C = Columns
NAME = "movielens"
MARKER_COLUMNS = {"userId", "movieId", "rating", "timestamp"}


def read(path: Path) -> ReadResult:
    """Read ratings.csv (a file or its folder); genres from a sibling movies.csv become the
    category (first genre)."""
    ratings_path = path / "ratings.csv" if path.is_dir() else path
    raw, rejects = read_csv_strings(ratings_path)
    frame = pd.DataFrame(index=raw.index)
    frame[C.user_id] = raw["userId"]
    frame[C.item_id] = raw["movieId"]
    frame[C.event_type] = EventType.rating.value
    frame[C.timestamp] = timestamps_from_epoch(raw["timestamp"])
    frame[C.rating] = raw["rating"]
    movies_path = ratings_path.parent / "movies.csv"
    if movies_path.exists():
        movies, _ = read_csv_strings(movies_path)
        genre = movies.set_index("movieId")["genres"].str.split("|").str[0]
        frame[C.category] = frame[C.item_id].map(genre)
    frame[C.event_id] = synthesize_event_ids(raw, NAME, ["userId", "movieId", "timestamp"])
    return ReadResult(finish(frame, f"{NAME} {ratings_path}", NAME, raw["timestamp"]), rejects)
