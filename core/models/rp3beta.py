"""RP3beta (Paudel et al. 2017; Dacrema et al. 2019 found it among the strongest simple
top-N baselines): item-item similarity from a 3-step random walk item -> user -> item on
the binarised interaction graph, each transition probability raised to `alpha`, divided by
the target item's popularity to the power `beta` (less popularity bias), `neighbours` kept
per item. Scoring is item_knn's: the user's row times the walk matrix."""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.core.models.item_knn import ItemKNNRecommender

BLOCK = 1024
"""Similarity rows computed densely at a time (bounds memory to BLOCK x items floats)."""


class RP3betaRecommender(ItemKNNRecommender):
    name = "rp3beta"
    search_space = {"neighbours": [50, 100, 200, 400], "alpha": [0.4, 0.6, 0.8, 1.0],
                    "beta": [0.0, 0.2, 0.3, 0.4, 0.5]}

    def __init__(self, neighbours: int = 200, alpha: float = 0.8, beta: float = 0.3,
                 popularity_half_life_days: float = 7.0):
        super().__init__(neighbours, 0.0, popularity_half_life_days)
        if alpha <= 0 or beta < 0:
            raise ValueError(f"rp3beta needs alpha > 0 and beta >= 0, got {alpha}, {beta}")
        self.alpha, self.beta = float(alpha), float(beta)

    def _fit(self, matrix: sp.csr_matrix, interactions: pd.DataFrame) -> None:
        binary = matrix.copy().astype(np.float32)
        binary.data[:] = 1.0
        user_to_item = _rows_to_probabilities(binary).power(self.alpha)
        item_to_user = _rows_to_probabilities(binary.T.tocsr()).power(self.alpha)
        degree = np.asarray(binary.sum(axis=0)).ravel()
        penalty = np.where(degree > 0, np.power(np.maximum(degree, 1.0), -self.beta), 0.0)
        n = binary.shape[1]
        blocks = []
        for start in range(0, n, BLOCK):
            rows = np.arange(start, min(start + BLOCK, n))
            walk = np.asarray((item_to_user[rows] @ user_to_item).todense()) * penalty[None, :]
            walk[np.arange(rows.size), rows] = 0.0
            blocks.append(_top_per_row(walk, self.neighbours))
        # W[i, j]: from the user's item i to the candidate j (penalised by j's popularity),
        # `neighbours` kept per i; item_knn scores x S^T, so S = W^T gives x W, the paper's
        self.similarity = sp.vstack(blocks).T.tocsr().astype(np.float32)
        self.__dict__.pop("_derived_similarity_t", None)


def _rows_to_probabilities(matrix: sp.csr_matrix) -> sp.csr_matrix:
    sums = np.asarray(matrix.sum(axis=1)).ravel()
    scale = np.divide(1.0, sums, out=np.zeros_like(sums, dtype=np.float64), where=sums > 0)
    return sp.diags(scale.astype(np.float32)) @ matrix


def _top_per_row(dense: np.ndarray, n: int) -> sp.csr_matrix:
    """The n largest positive entries of each row, as a sparse block."""
    n = min(n, dense.shape[1])
    top = np.argpartition(-dense, n - 1, axis=1)[:, :n] if n < dense.shape[1] else \
        np.tile(np.arange(dense.shape[1]), (dense.shape[0], 1))
    values = np.take_along_axis(dense, top, axis=1)
    rows = np.repeat(np.arange(dense.shape[0]), top.shape[1])
    keep = values.ravel() > 0
    return sp.csr_matrix((values.ravel()[keep], (rows[keep], top.ravel()[keep])),
                         shape=dense.shape)
