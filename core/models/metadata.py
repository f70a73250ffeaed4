"""Item and user metadata as tokens: what the content model and LightFM's hybrid features see.

Categories give one token per level of their hierarchy ("electronics", "electronics.phone")
and per `|`-separated genre; brand and price band one token each; title and description
their words. Missing values give no token.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.core.data.columns import Columns

C = Columns
ITEM_FIELDS = (C.category, C.brand, "price_band")
TEXT_FIELDS = ("title", "description")
USER_FIELDS = ("preferred_category", "preferred_time_of_day", C.segment)
WORD = re.compile(r"[a-z0-9]{2,}")


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) \
        and str(value).strip() != ""


def category_tokens(value: object) -> list[str]:
    """Every genre and every prefix of a dotted category path."""
    tokens = []
    for genre in str(value).lower().split("|"):
        parts = [p for p in genre.strip().split(".") if p]
        tokens += [f"category={'.'.join(parts[:n])}" for n in range(1, len(parts) + 1)]
    return tokens


def item_tokens(meta: pd.DataFrame | None, n_items: int) -> list[list[str]]:
    """Tokens per catalogue item (rows of `meta` follow the catalogue order)."""
    if meta is None:
        return [[] for _ in range(n_items)]
    columns = {name: meta[name].tolist() for name in (*ITEM_FIELDS, *TEXT_FIELDS)
               if name in meta.columns}
    out = []
    for row in range(n_items):
        tokens: list[str] = []
        for name, values in columns.items():
            value = values[row]
            if not _present(value):
                continue
            if name == C.category:
                tokens += category_tokens(value)
            elif name in TEXT_FIELDS:
                tokens += [f"word={w}" for w in WORD.findall(str(value).lower())]
            else:
                tokens.append(f"{name}={str(value).lower()}")
        out.append(tokens)
    return out


def user_tokens(meta: pd.DataFrame | None, n_users: int) -> list[list[str]]:
    """Tokens per user from the user feature table (preferred category, time of day...)."""
    if meta is None:
        return [[] for _ in range(n_users)]
    columns = {name: meta[name].tolist() for name in USER_FIELDS if name in meta.columns}
    return [[f"{name}={str(values[row]).lower()}" for name, values in columns.items()
             if _present(values[row])] for row in range(n_users)]


def token_matrix(tokens: list[list[str]]) -> tuple[sp.csr_matrix, list[str]]:
    """Rows x vocabulary indicator matrix and its vocabulary (sorted)."""
    vocabulary = sorted({t for row in tokens for t in row})
    index = {t: i for i, t in enumerate(vocabulary)}
    rows = np.repeat(np.arange(len(tokens)), [len(r) for r in tokens])
    cols = np.array([index[t] for row in tokens for t in row], dtype=np.int64)
    matrix = sp.csr_matrix((np.ones(cols.size, dtype=np.float32), (rows, cols)),
                           shape=(len(tokens), len(vocabulary)))
    matrix.data[:] = 1.0  # a repeated token counts once
    matrix.sum_duplicates()
    matrix.data = np.minimum(matrix.data, 1.0)
    return matrix, vocabulary


def l2_rows(matrix: sp.spmatrix) -> sp.csr_matrix:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    norms = np.sqrt(np.asarray(out.multiply(out).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    out.data *= np.repeat(scale, np.diff(out.indptr)).astype(np.float32)
    return out
