"""EASE (Steck, 2019): a closed-form item-item linear model, a strong top-N baseline.

B = I - P / diag(P) with P = (X'X + L)^-1 and diag(B) = 0; scores = X_u B, where
L = l2 I + dropout / (1 - dropout) diag(X'X). With `dropout` 0 this is EASE; above 0 it is
the full-rank EDLAE of Steck (2020, "Autoencoders that don't overfit towards the
identity"): training on inputs with each item dropped with that probability adds an L2
penalty proportional to the item's own count, which shrinks the weights of the popular
items most. The inverse is dense (items x items), so the model keeps the `max_items` most
interacted items (the rest are never recommended by it); 10k items take 0.4 GB (float32,
inverted in place).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp

from recsys.core.errors import ConfigError
from recsys.core.models.base import Recommender

WEIGHTINGS = ("binary", "log", "raw")


def weighted(matrix: sp.csr_matrix, weighting: str) -> sp.csr_matrix:
    out = matrix.astype(np.float32, copy=True)
    if weighting == "binary":
        out.data[:] = 1.0
    elif weighting == "log":
        out.data = np.log1p(out.data)
    return out


class EASERecommender(Recommender):
    """Embarrassingly shallow autoencoder with L2 strength `l2`."""

    name = "ease"
    search_space = {"l2": [50.0, 100.0, 200.0, 400.0, 800.0], "weighting": ["binary", "log"]}
    """`dropout` is left out: searched with it on MovieLens-small's inner split, the best
    set with dropout scored 0.0003 NDCG@10 below the best without (docs/models.md)."""

    # set by fit
    kept: np.ndarray
    """Catalogue positions of the items the model keeps (the `max_items` most interacted)."""
    kept_inputs: sp.csr_matrix
    """users x kept items, weighted."""
    weights: np.ndarray
    """kept x kept item weights B."""

    def __init__(self, l2: float = 200.0, weighting: str = "binary", max_items: int = 10_000,
                 dropout: float = 0.0, popularity_half_life_days: float = 7.0):
        super().__init__(popularity_half_life_days)
        if weighting not in WEIGHTINGS:
            raise ConfigError(f"ease: weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        if l2 <= 0 or max_items <= 0:
            raise ConfigError(f"ease: l2 and max_items must be positive, got {l2}, {max_items}")
        if not 0 <= dropout < 1:
            raise ConfigError(f"ease: dropout must be in [0, 1), got {dropout}")
        self.l2, self.weighting, self.max_items = float(l2), weighting, int(max_items)
        self.dropout = float(dropout)

    def _fit(self, matrix: sp.csr_matrix, interactions: pd.DataFrame) -> None:
        x = weighted(matrix, self.weighting)
        counts = np.diff(x.tocsc().indptr)
        warm = np.flatnonzero(counts > 0)
        if warm.size > self.max_items:
            warm = np.sort(warm[np.argsort(-counts[warm], kind="stable")[:self.max_items]])
        self.kept = warm
        xk = x[:, warm].tocsr()
        self.kept_inputs = xk  # users x kept items, weighted: scoring slices rows only
        gram = (xk.T @ xk).toarray().astype(np.float32)
        diagonal = np.diag_indices_from(gram)
        gram[diagonal] += self.l2 + self.dropout / (1 - self.dropout) * gram[diagonal]
        # inverse of the symmetric positive-definite Gram matrix through its Cholesky factor,
        # in float32 and in place: one items x items array at a time
        factor, info = scipy.linalg.lapack.spotrf(gram, lower=False, overwrite_a=True)
        if info != 0:
            raise ConfigError(f"ease: Gram matrix is not positive definite (LAPACK info {info})")
        inverse, info = scipy.linalg.lapack.spotri(factor, lower=False, overwrite_c=True)
        del factor, gram
        _mirror_upper_in_place(inverse)
        # LAPACK returns column-major; the symmetric inverse's transpose is the same matrix
        # in row-major order, for free. Row-major matters: sparse @ dense copies a
        # column-major operand on every call (97 MB per call at 5k items).
        inverse = inverse.T
        inverse /= -np.diag(inverse).copy()[None, :]
        np.fill_diagonal(inverse, 0.0)
        self.weights = inverse

    def _candidate_columns(self) -> np.ndarray:
        return self.kept

    def _score_columns(self, user_rows: np.ndarray) -> np.ndarray:
        if user_rows.size == 1:  # the serving path: the user's weight rows, no sparse objects
            inputs, row = self.kept_inputs, int(user_rows[0])
            lo, hi = inputs.indptr[row], inputs.indptr[row + 1]
            one: np.ndarray = (inputs.data[lo:hi] @ self.weights[inputs.indices[lo:hi]])[None, :]
            return one
        scores: np.ndarray = self.kept_inputs[user_rows] @ self.weights
        return scores

    def _score(self, user_rows: np.ndarray) -> np.ndarray:
        scores = self._score_columns(user_rows)
        if self.kept.size == self.items.size:
            return scores
        out = np.full((user_rows.size, self.items.size), -np.inf, dtype=np.float32)
        out[:, self.kept] = scores
        return out

    def _item_similarity(self, rows: np.ndarray) -> np.ndarray:
        out = np.zeros((rows.size, self.items.size))
        position = np.full(self.items.size, -1)
        position[self.kept] = np.arange(self.kept.size)
        inside = position[rows] >= 0
        out[np.ix_(inside, self.kept)] = self.weights[position[rows[inside]]]
        return out


def _mirror_upper_in_place(matrix: np.ndarray, block: int = 1024) -> None:
    """Copy the upper triangle onto the lower one block by block (no n x n temporaries)."""
    for lo in range(0, matrix.shape[0], block):
        hi = min(lo + block, matrix.shape[0])
        matrix[lo:hi, :lo] = matrix[:lo, lo:hi].T
        diagonal = matrix[lo:hi, lo:hi]
        diagonal[:] = np.triu(diagonal) + np.triu(diagonal, 1).T
