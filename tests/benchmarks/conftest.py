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
