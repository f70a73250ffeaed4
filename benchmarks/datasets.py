"""Data sets for offline benchmarks, as interactions plus item metadata.

- `movielens`: ratings.csv (userId,movieId,rating,timestamp) or u.data (tab-separated);
  a sibling movies.csv (movieId,title,genres) / u.item gives title and genres (category).
  RecBole's atomic files of a MovieLens set (`<name>.inter`, `<name>.item` with a `class`
  genre field: the layout of RecBole's bundled `dataset_example/ml-100k`) read the same.
- any event layout `extract` reads (rees46, retailrocket, jsonl, ...): events are cleaned,
  weighted and aggregated by the pipeline's own preprocess code.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recsys.core.data.columns import Columns
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
    elif (inter := _atomic_file(folder, ".inter")) is not None:
        return _load_atomic(folder, inter)
    else:
        raise ConfigError(f"movielens: no ratings.csv, u.data or RecBole .inter file in "
                          f"{folder}")
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


ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy",
                 "Crime", "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical",
                 "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")
"""MovieLens-100k's 19 genre flags, in u.item's column order (u.genre lists them)."""
ML100K_FIELDS = ("movie_id", "title", "release_date", "video_release_date", "imdb_url")


def _movielens_items(folder: Path) -> pd.DataFrame | None:
    """Title and genres ("A|B", as movies.csv writes them) per movie, from movies.csv or
    MovieLens-100k's u.item; None when the folder has neither (models that need metadata
    are then skipped with a note)."""
    movies = folder / "movies.csv"
    if movies.exists():
        raw = pd.read_csv(movies, dtype={"movieId": str})
        return pd.DataFrame({C.item_id: raw["movieId"], "title": raw["title"],
                             C.category: raw["genres"].str.replace("(no genres listed)", "",
                                                                   regex=False)})
    if (folder / "u.item").exists():
        return read_u_item(folder / "u.item")
    return None


def _atomic_file(folder: Path, suffix: str) -> Path | None:
    found = sorted(folder.glob(f"*{suffix}"))
    if len(found) > 1:
        raise ConfigError(f"movielens: {folder} holds {len(found)} {suffix} files; one "
                          f"data set per folder")
    return found[0] if found else None


def _read_atomic(path: Path, required: set[str]) -> pd.DataFrame:
    """A RecBole atomic file: tab-separated, a header of `field:type` names, no quoting."""
    raw = pd.read_csv(path, sep="\t", dtype=str, quoting=3, keep_default_na=False)
    raw.columns = [str(c).split(":")[0] for c in raw.columns]
    missing = required - set(raw.columns)
    if missing:
        raise SchemaError(f"movielens: {path} lacks fields {sorted(missing)}")
    return raw


def _load_atomic(folder: Path, inter: Path) -> RatingsData:
    """A RecBole data set: its `.inter` file (`inter`) and the folder's `.item` file."""
    raw = _read_atomic(inter, {"user_id", "item_id", "rating", "timestamp"})
    interactions = pd.DataFrame({
        C.user_id: raw["user_id"], C.item_id: raw["item_id"],
        C.rating: pd.to_numeric(raw["rating"], errors="raise").astype(float), C.weight: 1.0,
        C.timestamp: pd.to_datetime(pd.to_numeric(raw["timestamp"]).astype("int64"),
                                    unit="s", utc=True)})
    item_file = _atomic_file(folder, ".item")
    items = None
    if item_file is not None:
        meta = _read_atomic(item_file, {"item_id", "movie_title", "class"})
        items = pd.DataFrame({C.item_id: meta["item_id"], "title": meta["movie_title"],
                              C.category: meta["class"].str.split().str.join("|")})
    return RatingsData(folder.name, interactions, items)


def read_u_item(path: Path) -> pd.DataFrame:
    """MovieLens-100k's u.item: latin-1, `|`-separated, 5 fields then 19 genre flags."""
    names = [*ML100K_FIELDS, *ML100K_GENRES]
    raw = pd.read_csv(path, sep="|", encoding="latin-1", header=None, names=names,
                      dtype=str, keep_default_na=False)
    flags = raw[list(ML100K_GENRES)]
    if not flags.isin(["0", "1"]).all().all():
        raise SchemaError(f"movielens: {path} is not in the u.item layout (5 fields and 19 "
                          f"genre flags of 0/1 per line)")
    genres = flags.eq("1").apply(lambda row: "|".join(g for g, on in zip(ML100K_GENRES, row)
                                                      if on), axis=1)
    return pd.DataFrame({C.item_id: raw["movie_id"], "title": raw["title"],
                         C.category: genres.replace("unknown", "")})
