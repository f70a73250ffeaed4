"""Noise floors for drift thresholds.

Events of one session share a device, a source and often a category, so a small current
window (a day of a small shop) is far noisier than its row count suggests, and fixed
distance thresholds fire on noise alone. Each column's threshold is raised to what
same-sized, session-grouped samples of the reference itself reach against the rest of the
reference (the largest of a few draws, with a margin). Large windows keep the configured
thresholds; small ones get honest ones, and the summary says which applied.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import distance
from scipy.stats import wasserstein_distance

DRAWS = 5
MARGIN = 1.25


def column_distance(reference: pd.Series, current: pd.Series, numeric: bool) -> float:
    """The distances Evidently reports: normed Wasserstein, or Jensen-Shannon."""
    if numeric:
        ref, cur = reference.dropna().to_numpy(), current.dropna().to_numpy()
        if ref.size == 0 or cur.size == 0:
            return 0.0
        spread = np.std(ref)
        return float(wasserstein_distance(ref, cur) / spread) if spread > 0 else 0.0
    keys = pd.Index(reference.unique()).union(pd.Index(current.unique()))
    p = reference.value_counts(normalize=True).reindex(keys, fill_value=0).to_numpy()
    q = current.value_counts(normalize=True).reindex(keys, fill_value=0).to_numpy()
    return float(distance.jensenshannon(p, q))


def noise_floors(reference: pd.DataFrame, sessions: pd.Series, current_rows: int,
                 numeric: set[str], seed: int = 0) -> dict[str, float]:
    """Per column, the largest distance between a session-grouped reference sample of
    `current_rows` rows and the rest of the reference, over a few draws."""
    rng = np.random.default_rng(seed)
    unique = sessions.unique()
    if current_rows >= len(reference) // 2 or unique.size < 4:
        return {c: 0.0 for c in reference.columns}
    per_session = len(reference) / unique.size
    take = max(1, int(round(current_rows / per_session)))
    floors = {c: 0.0 for c in reference.columns}
    for _ in range(DRAWS):
        chosen = set(rng.choice(unique, size=min(take, unique.size - 1), replace=False))
        inside = sessions.isin(chosen).to_numpy()
        for column in reference.columns:
            value = column_distance(reference[column][~inside], reference[column][inside],
                                    column in numeric)
            floors[column] = max(floors[column], value)
    return {c: round(v * MARGIN, 6) for c, v in floors.items()}
