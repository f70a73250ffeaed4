"""Item-item collaborative filtering: cosine over the weighted user-item matrix, top-N
neighbours per item, sparse and vectorised scoring (user row @ similarity matrix)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.core.models.base import Recommender


class ItemKNNRecommender(Recommender):
    """sim(i, j) = x_i . x_j / (|x_i| |x_j| + shrinkage), keeping `neighbours` per item."""

    name = "item_knn"
    search_space = {"neighbours": [20, 50, 100, 200, 400],
                    "shrinkage": [0.0, 10.0, 50.0, 100.0]}
    similarity: sp.csr_matrix
    """items x items, the `neighbours` most similar per row (set by fit)."""

    def __init__(self, neighbours: int = 100, shrinkage: float = 10.0,
                 popularity_half_life_days: float = 7.0):
        super().__init__(popularity_half_life_days)
        if neighbours <= 0:
            raise ValueError(f"neighbours must be positive, got {neighbours}")
        self.neighbours = neighbours
        self.shrinkage = shrinkage

    def _fit(self, matrix: sp.csr_matrix, interactions: pd.DataFrame) -> None:
        x = matrix.tocsc().astype(np.float32)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0))).ravel()
        gram = (x.T @ x).tocsr()
        gram.setdiag(0)
        gram.eliminate_zeros()
        rows = np.repeat(np.arange(gram.shape[0]), np.diff(gram.indptr))
        gram.data = gram.data / (norms[rows] * norms[gram.indices] + self.shrinkage)
        self.similarity = _keep_top_per_row(gram, self.neighbours)
        self.__dict__.pop("_derived_similarity_t", None)

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        if user_rows.size == 1:  # the serving path: NumPy over the CSR arrays, no sparse objects
            return self._score_one(int(user_rows[0]))[None, :]
        # x S^T with S^T kept as CSR: the plain `.T` is a CSC view that scipy converts back
        # to CSR (a copy of the whole similarity, ~3 ms at 5k items) on every call
        return np.asarray((self.seen[user_rows] @ self._similarity_t()).todense())

    def _score_one(self, row: int) -> np.ndarray:
        """x S^T for one user: the S^T rows of the user's items, weighted and summed."""
        seen, similarity_t = self.seen, self._similarity_t()
        lo, hi = seen.indptr[row], seen.indptr[row + 1]
        starts, ends = similarity_t.indptr[seen.indices[lo:hi]], \
            similarity_t.indptr[seen.indices[lo:hi] + 1]
        if not (ends - starts).sum():
            return np.zeros(self.items.size)
        columns = np.concatenate([similarity_t.indices[a:b] for a, b in zip(starts, ends)])
        weights = np.concatenate([similarity_t.data[a:b] * w
                                  for a, b, w in zip(starts, ends, seen.data[lo:hi])])
        return np.bincount(columns, weights=weights, minlength=self.items.size)

    def _similarity_t(self) -> sp.csr_matrix:
        cached = self.__dict__.get("_derived_similarity_t")
        if cached is None:
            cached = self.similarity.T.tocsr()
            self.__dict__["_derived_similarity_t"] = cached
        return cached

    def _item_similarity(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.similarity[rows].todense())


def _keep_top_per_row(matrix: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep the n largest entries of every row."""
    lengths = np.diff(matrix.indptr)
    if lengths.max(initial=0) <= n:
        return matrix
    keep = np.ones(matrix.nnz, dtype=bool)
    for row in np.flatnonzero(lengths > n):
        lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
        drop = np.argpartition(matrix.data[lo:hi], hi - lo - n)[: hi - lo - n]
        keep[lo + drop] = False
    pruned = matrix.copy()
    pruned.data = np.where(keep, pruned.data, 0)
    pruned.eliminate_zeros()
    return pruned
