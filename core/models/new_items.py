"""New items: catalogue items newer than a model's training data, reached by their content.

A collaborative champion never recommends an item it has no interactions for. The train
step therefore gives every model the items first seen after its training split (in the
pipeline: the holdout window's items, with the category, brand and price band their events
carry - what a shop's catalogue knows of an item before anyone has bought it), as TF-IDF
vectors of their metadata tokens (`metadata.item_tokens`), next to the same vectors of the
items the model knows. A new item's score for a user is the weighted mean of its cosine
with the items they took (log-weighted) and with the live session's recent items. Serving
gives new items a fixed share of each list's slots (`new_items_share`, the last ones);
`new_item_metrics` measures that policy on the temporal holdout.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from recsys.core.data.columns import Columns
from recsys.core.errors import ConfigError
from recsys.core.models.base import Recommender
from recsys.core.models.metadata import item_tokens, l2_rows, token_matrix

C = Columns
TABLE = "_derived_new_item_cosines"
DENSE_LIMIT = 20_000_000


def attach_new_items(model: Recommender, item_metadata: pd.DataFrame) -> int:
    """Items of `item_metadata` (item_id + category/brand/price_band/title...) that the fitted
    model does not know become its new items; returns how many. Known items' vectors come
    from the same table (or the model's own metadata for items it lacks)."""
    model._check_fitted()
    meta = item_metadata.assign(**{C.item_id: item_metadata[C.item_id].astype(str)})
    meta = meta.drop_duplicates(C.item_id, keep="last").set_index(C.item_id)
    new_ids = np.array(sorted(set(meta.index) - set(model.item_index)), dtype=object)
    known = meta.reindex(model.items)
    if model.item_meta is not None:
        known = known.combine_first(model.item_meta)
    tokens = item_tokens(known, model.items.size) + item_tokens(meta.loc[new_ids], new_ids.size)
    counts, vocabulary = token_matrix(tokens)
    documents = max(counts.shape[0], 1)
    frequency = np.asarray((counts > 0).sum(axis=0)).ravel()
    idf = np.log((1 + documents) / (1 + frequency)) + 1.0  # sklearn's smooth idf
    vectors = l2_rows(counts @ sp.diags(idf.astype(np.float32)))
    model.known_item_vectors = vectors[: model.items.size]
    model.new_item_vectors = vectors[model.items.size:]
    model.new_item_ids = new_ids
    model.__dict__.pop(TABLE, None)
    return int(new_ids.size)


def _attached(model: Recommender) -> tuple[npt.NDArray[np.object_], sp.csr_matrix,
                                            sp.csr_matrix]:
    """(new item ids, known items' vectors, new items' vectors) of a model that has been
    given its new items."""
    ids, known, new = model.new_item_ids, model.known_item_vectors, model.new_item_vectors
    if ids is None or known is None or new is None:
        raise ConfigError(f"{model.name}: no new items; call attach_new_items() first")
    return ids, known, new


def has_new_items(model: Recommender) -> bool:
    ids = getattr(model, "new_item_ids", None)
    return ids is not None and len(ids) > 0


def new_item_scores(model: Recommender, user_id: str | None = None,
                    recent_items: Iterable[object] = ()) -> npt.NDArray[np.float64]:
    """Per new item, the weighted mean of its cosine with the user's training items
    (log-weighted) and the session's recent items (weight 1): zeros when neither says
    anything. Reads one row per item from the cached item x new-item cosine table."""
    rows: list[int] = []
    weights: list[float] = []
    user_row = model.user_index.get(str(user_id)) if user_id is not None else None
    if user_row is not None:
        seen = model.seen
        lo, hi = seen.indptr[user_row], seen.indptr[user_row + 1]
        rows += seen.indices[lo:hi].tolist()
        weights += np.log1p(seen.data[lo:hi]).tolist()
    for item in recent_items:
        row = model.item_index.get(str(item))
        if row is not None:
            rows.append(row)
            weights.append(1.0)
    total = float(np.sum(weights)) if weights else 0.0
    if total <= 0:
        return np.zeros(len(_attached(model)[0]))
    table = _cosine_table(model)
    wanted = np.asarray(rows, dtype=np.int64)
    picked: npt.NDArray[np.float64] = table[wanted] if isinstance(table, np.ndarray) \
        else table[wanted].toarray()
    return np.asarray(weights) @ picked / total


def _cosine_table(model: Recommender) -> npt.NDArray[np.float64] | sp.csr_matrix:
    """Known item x new item cosines, computed once per model (a derived attribute: never
    saved): dense when it is small (up to DENSE_LIMIT cells), sparse otherwise."""
    table = getattr(model, TABLE, None)
    if table is None:
        _, known, new = _attached(model)
        product = (known @ new.T).tocsr()
        cells = product.shape[0] * product.shape[1]
        table = product.toarray().astype(np.float64) if cells <= DENSE_LIMIT else product
        setattr(model, TABLE, table)
    return table


def new_item_slots(k: int, share: float) -> int:
    """How many of k slots go to new items."""
    return int(np.floor(k * share))


def new_item_metrics(model: Recommender, holdout: pd.DataFrame, k: int = 10,
                     share: float = 0.2) -> dict[str, float]:
    """The new-item slots on the temporal holdout, for the holdout's known users who took a
    new item: the share of them shown one they took (hit rate) and the share of their new
    items shown (recall), against the expectation for the same number of new items drawn at
    random."""
    slots = new_item_slots(k, share)
    known_new = getattr(model, "new_item_ids", None)
    empty = {"new_items": float(0 if known_new is None else len(known_new)),
             "new_item_users": 0.0}
    if not has_new_items(model) or slots == 0:
        return empty
    new_ids = _attached(model)[0]
    new_index = {item: n for n, item in enumerate(new_ids)}
    taken = holdout[holdout[C.item_id].astype(str).isin(new_index)
                    & holdout[C.user_id].astype(str).isin(model.user_index)]
    by_user = taken.groupby(taken[C.user_id].astype(str))[C.item_id].agg(
        lambda items: set(map(str, items)))
    if by_user.empty:
        return empty
    hits, recall, random_hits = [], [], []
    n_new = len(new_index)
    for user, wanted in by_user.items():
        scores = new_item_scores(model, user)
        shown = set(new_ids[np.argsort(-scores, kind="stable")[:slots]])
        found = len(shown & wanted)
        hits.append(found > 0)
        recall.append(found / len(wanted))
        random_hits.append(1 - _none_drawn(n_new, len(wanted), slots))
    return {"new_items": float(n_new), "new_item_users": float(len(by_user)),
            f"new_item_hit_rate_at_{k}": float(np.mean(hits)),
            f"new_item_recall_at_{k}": float(np.mean(recall)),
            f"new_item_hit_rate_at_{k}_random": float(np.mean(random_hits))}


def _none_drawn(population: int, wanted: int, drawn: int) -> float:
    """Probability that `drawn` items picked at random from `population` miss all `wanted`."""
    probability = 1.0
    for n in range(min(drawn, population)):
        probability *= max(population - wanted - n, 0) / (population - n)
    return probability
