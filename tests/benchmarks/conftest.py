"""A small MovieLens-format folder for the model benchmarks."""
import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def ratings_dir(tmp_path):
    rng = np.random.default_rng(5)
    taste = rng.normal(size=(50, 2)) @ rng.normal(size=(2, 40))
    rows = [(u, i, float(np.clip(np.round(3 + taste[u, i]), 1, 5)), 1_000_000 + u * 100 + i)
            for u in range(50) for i in range(40) if rng.random() < 0.4]
    folder = tmp_path / "ml-tiny"
    folder.mkdir()
    pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"]).to_csv(
        folder / "ratings.csv", index=False)
    pd.DataFrame({"movieId": range(40), "title": [f"Film {i} (1999)" for i in range(40)],
                  "genres": ["Drama|Comedy" if i % 2 else "Action" for i in range(40)]}
                 ).to_csv(folder / "movies.csv", index=False)
    return folder


GENRE_FLAGS = 19


@pytest.fixture
def ml100k_dir(tmp_path):
    """A tiny folder in MovieLens-100k's own layout: u.data (tab-separated) and u.item
    (latin-1, `|`-separated, 5 fields and 19 genre flags)."""
    folder = tmp_path / "ml-100k-tiny"
    folder.mkdir()
    rng = np.random.default_rng(9)
    rows = [f"{u}\t{i}\t{int(rng.integers(1, 6))}\t{880_000_000 + u * 50 + i}"
            for u in range(1, 31) for i in range(1, 21) if rng.random() < 0.5]
    (folder / "u.data").write_text("\n".join(rows) + "\n")
    items = []
    for i in range(1, 21):
        flags = ["0"] * GENRE_FLAGS
        flags[1 + i % 3] = "1"  # Action, Adventure or Animation
        if i == 2:
            flags[8] = "1"  # and Drama
        title = "Misérables, Les (1995)" if i == 1 else f"Film {i} (1996)"
        items.append("|".join([str(i), title, "01-Jan-1995", "",
                               f"http://us.imdb.com/M/title-exact?{i}", *flags]))
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    return folder
