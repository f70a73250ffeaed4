"""The sparse user-item matrix of weighted interactions, with its id indexes."""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.core.data.columns import Columns

C = Columns


@dataclass
class InteractionMatrix:
    """CSR users x items of summed weights; row/column i is users[i] / items[i]."""

    matrix: sp.csr_matrix
    users: np.ndarray
    items: np.ndarray

    @classmethod
    def from_interactions(cls, interactions: pd.DataFrame) -> "InteractionMatrix":
        users, user_codes = np.unique(interactions[C.user_id].to_numpy(dtype=str),
                                      return_inverse=True)
        items, item_codes = np.unique(interactions[C.item_id].to_numpy(dtype=str),
                                      return_inverse=True)
        matrix = sp.csr_matrix(
            (interactions[C.weight].to_numpy(dtype=np.float32), (user_codes, item_codes)),
            shape=(users.size, items.size),
        )
        matrix.sum_duplicates()
        return cls(matrix=matrix, users=users, items=items)

    def to_bytes(self) -> bytes:
        sink = io.BytesIO()
        np.savez_compressed(sink, data=self.matrix.data, indices=self.matrix.indices,
                            indptr=self.matrix.indptr, shape=np.array(self.matrix.shape),
                            users=self.users, items=self.items)
        return sink.getvalue()

    @classmethod
    def from_bytes(cls, payload: bytes) -> "InteractionMatrix":
        arrays = np.load(io.BytesIO(payload), allow_pickle=False)
        matrix = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]),
                               shape=tuple(arrays["shape"]))
        return cls(matrix=matrix, users=arrays["users"], items=arrays["items"])

    @property
    def density(self) -> float:
        cells = self.matrix.shape[0] * self.matrix.shape[1]
        return float(self.matrix.nnz / cells) if cells else 0.0
