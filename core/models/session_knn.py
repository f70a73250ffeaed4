"""Next-item models for anonymous sessions, scored over every item (ids 1..n, 0 = padding).

They learn from sessions (lists of item ids in click order, oldest session first) and
score a prefix (the session so far) against every item, as the session-based literature's
protocols need (`benchmarks/session_protocols.py`). Five models:

- `SequentialRules` (Ludewig & Jannach 2018, "SR"; the serving path's own rules in
  `session_rules.py` on events): every item `a` followed `d` <= `window` steps later by
  `b` in a training session adds 1/d to a -> b (a -> a too: re-viewing is a real step);
  a prefix scores b by the rules of its last `recent` items, the newest weighing most
  (1 / age).
- `SessionKNN` ("SKNN", Jannach & Ludewig 2017): among the `sample` most recent training
  sessions sharing an item with the prefix, the `k` most similar (cosine of the item sets)
  vote for their items with their similarity.
- `VSKNN` (Ludewig & Jannach 2018): SKNN where the prefix's items weigh linearly more the
  later they come (position p of L weighs p / L) in the similarity.
- `STAN` (Garg et al., SIGIR 2019): the prefix's items weigh exp((p - L) / `position_decay`),
  a neighbour's similarity is multiplied by exp(-(T - t) / `recency_decay`) (its age), and a
  neighbour's item votes exp(-|distance to the neighbour's latest shared item| /
  `neighbour_decay`). The SR-GNN files carry no timestamps: the time of a session is its
  place in the training file (0 the oldest; a prefix being scored is at T = the number of
  training sessions), so `recency_decay` counts sessions, not seconds.
- `SLIST`: a closed-form linear item-item model (see its docstring for the vocabulary).

Repeat consumption is explicit in every model (`session_base.SessionModel`): after the
model's scores are scaled to [0, 1], an item already in the prefix gets `repeat_boost` / age
added (age 1 for the newest; negative = a penalty: -a puts every repeat of age up to a below
every unseen item). The kNN models score prefix items by their neighbours' votes as any
other item. Item popularity x `popularity_weight` (1e-6 by default) orders what the model
does not reach.

Every default is the value the validation search chose on RetailRocket (docs/models.md):
repeat_boost 5 (slist 2), rules window 5 / recent 5, sknn k 50 / sample 500, vsknn k 50 /
sample 1000, stan k 100 / sample 2500 / neighbour_decay 0.5. The session zoo
(`session_zoo.py`) registers these with the weighted ensemble and the neural models.

A fitted model is plain arrays and numbers, saved and loaded like every model of the zoo
(`core/models/storage.py`: JSON + .npz, `allow_pickle=False`, SHA-256 of the files).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from recsys.core.errors import ConfigError
from recsys.core.models.session_base import SessionModel

__all__ = ["STAN", "SLIST", "VSKNN", "SequentialRules", "SessionKNN", "SessionModel"]

REPEAT_BOOSTS = [-1.0, 0.0, 0.3, 1.0, 2.0, 5.0, 10.0]
"""The repeat boosts a search tries first (the class default, 5, is skipped as known)."""


class SequentialRules(SessionModel):
    name = "sequential_rules"
    search_space = {"repeat_boost": REPEAT_BOOSTS, "window": [1, 2, 3, 5, 10],
                    "recent": [1, 2, 3, 5]}
    rules: sp.csr_matrix
    """(n_items + 1) x (n_items + 1) rule weights a -> b (set by fit)."""

    def __init__(self, window: int = 5, recent: int = 5, **common: float) -> None:
        super().__init__(**common)
        if window < 1 or recent < 1:
            raise ConfigError("sequential rules need window >= 1 and recent >= 1")
        self.window, self.recent = int(window), int(recent)

    def _fit(self, sessions: list[list[int]]) -> None:
        rows: list[npt.NDArray[np.int64]] = []
        cols: list[npt.NDArray[np.int64]] = []
        weights: list[npt.NDArray[np.float32]] = []
        for session in sessions:
            s = np.asarray(session, dtype=np.int64)
            for step in range(1, min(self.window, len(s) - 1) + 1):
                rows.append(s[:-step])  # a -> a too: the SR-GNN files keep re-views
                cols.append(s[step:])
                weights.append(np.full(len(s) - step, 1.0 / step, dtype=np.float32))
        n = self.n_items + 1
        empty = [np.zeros(0, dtype=np.int64)]
        self.rules = sp.csr_matrix((np.concatenate(weights or [np.zeros(0, np.float32)]),
                                    (np.concatenate(rows or empty),
                                     np.concatenate(cols or empty))), shape=(n, n))
        self.rules.sum_duplicates()

    def _raw_scores(self, prefixes: list[list[int]]) -> np.ndarray:
        rows: list[int] = []
        cols: list[int] = []
        weights: list[float] = []
        for row, prefix in enumerate(prefixes):
            for age, item in enumerate(reversed(prefix[-self.recent:]), start=1):
                rows.append(row)
                cols.append(item)
                weights.append(1.0 / age)
        query = sp.csr_matrix((weights, (rows, cols)),
                              shape=(len(prefixes), self.n_items + 1), dtype=np.float32)
        scores: np.ndarray = (query @ self.rules).toarray()
        return scores


class SessionKNN(SessionModel):
    """SKNN; `VSKNN` and `STAN` change the weights (see the module docstring)."""

    name = "sknn"
    search_space = {"repeat_boost": REPEAT_BOOSTS, "k": [50, 100, 200, 500],
                    "sample": [500, 1000, 2500, 5000]}
    positions: sp.csr_matrix
    """sessions x items: 1 + the position of the item's last click in the session (set by
    fit)."""

    def __init__(self, k: int = 50, sample: int = 500, **common: float) -> None:
        super().__init__(**common)
        if k < 1 or sample < 1:
            raise ConfigError(f"{self.name} needs k >= 1 and sample >= 1")
        self.k, self.sample = int(k), int(sample)

    def _fit(self, sessions: list[list[int]]) -> None:
        rows: list[int] = []
        cols: list[int] = []
        data: list[int] = []
        for number, session in enumerate(sessions):
            last = {item: position for position, item in enumerate(session, start=1)}
            rows.extend([number] * len(last))
            cols.extend(last)
            data.extend(last.values())
        self.positions = sp.csr_matrix((np.asarray(data, dtype=np.float32), (rows, cols)),
                                       shape=(len(sessions), self.n_items + 1))
        self.positions.sort_indices()

    @property
    def by_item(self) -> sp.csc_matrix:
        """`positions` by item column (derived: rebuilt after a load, never saved)."""
        cached: sp.csc_matrix | None = getattr(self, "_derived_by_item", None)
        if cached is None:
            cached = self._derived_by_item = self.positions.tocsc()
        return cached

    # the three variants differ only here
    def _prefix_weights(self, length: int) -> np.ndarray:
        """Weight of each prefix position 1..length."""
        return np.ones(length, dtype=np.float32)

    def _neighbour_weights(self, sessions: np.ndarray) -> np.ndarray:
        return np.ones(sessions.size, dtype=np.float32)

    def _votes(self, neighbours: sp.csr_matrix, similarity: np.ndarray,
               prefix_items: np.ndarray) -> np.ndarray:
        binary = neighbours.copy()
        binary.data[:] = 1.0
        return np.asarray(binary.T @ similarity).ravel()

    def _raw_scores(self, prefixes: list[list[int]]) -> np.ndarray:
        out = np.zeros((len(prefixes), self.n_items + 1), dtype=np.float32)
        for row, prefix in enumerate(prefixes):
            if prefix:
                out[row] = self._score_one(prefix)
        return out

    def _score_one(self, prefix: list[int]) -> np.ndarray:
        weights_by_position = self._prefix_weights(len(prefix))
        latest: dict[int, float] = {}
        for position, item in enumerate(prefix):  # ordered by each item's last click
            latest.pop(item, None)
            latest[item] = weights_by_position[position]
        items = np.fromiter(latest, dtype=np.int64)
        weights = np.fromiter(latest.values(), dtype=np.float32)
        indptr, indices = self.by_item.indptr, self.by_item.indices
        candidates = np.unique(np.concatenate([indices[indptr[i]:indptr[i + 1]]
                                               for i in items]))
        votes = np.zeros(self.n_items + 1, dtype=np.float32)
        if candidates.size == 0:
            return votes
        candidates = candidates[-self.sample:]  # the most recent ones (file order = time)
        rows = self.positions[candidates]
        shared = rows[:, items]
        shared.data[:] = 1.0
        dot = np.asarray(shared @ weights).ravel()
        lengths = np.diff(rows.indptr)
        similarity = dot / np.sqrt(len(items) * lengths)
        similarity *= self._neighbour_weights(candidates)
        if similarity.size > self.k:
            chosen = np.argpartition(-similarity, self.k - 1)[:self.k]
        else:
            chosen = np.arange(similarity.size)
        chosen = chosen[similarity[chosen] > 0]
        return self._votes(rows[chosen], similarity[chosen], items)


class VSKNN(SessionKNN):
    name = "vsknn"

    def __init__(self, k: int = 50, sample: int = 1000, **common: float) -> None:
        super().__init__(k=k, sample=sample, **common)

    def _prefix_weights(self, length: int) -> np.ndarray:
        return np.arange(1, length + 1, dtype=np.float32) / length


class STAN(SessionKNN):
    name = "stan"
    search_space = {"repeat_boost": REPEAT_BOOSTS,
                    "neighbour_decay": [0.5, 1.0, 2.0, 4.0, 8.0],
                    "position_decay": [0.5, 1.0, 2.0, 4.0, 8.0],
                    "recency_decay": [1e3, 1e4, 1e5, 1e6], "k": [50, 100, 200, 500],
                    "sample": [1000, 2500, 5000]}
    """The decays before k and sample: a short search (the bench's default 16 fits) reaches
    the three decays, which move STAN more than k and sample do on RetailRocket."""

    def __init__(self, k: int = 100, sample: int = 2500, position_decay: float = 2.0,
                 recency_decay: float = 1e5, neighbour_decay: float = 0.5,
                 **common: float) -> None:
        super().__init__(k=k, sample=sample, **common)
        if min(position_decay, recency_decay, neighbour_decay) <= 0:
            raise ConfigError("stan's decays must be > 0")
        self.position_decay = float(position_decay)
        self.recency_decay = float(recency_decay)
        self.neighbour_decay = float(neighbour_decay)

    def _prefix_weights(self, length: int) -> np.ndarray:
        positions = np.arange(1, length + 1, dtype=np.float32)
        weights: np.ndarray = np.exp((positions - length) / self.position_decay)
        return weights

    def _neighbour_weights(self, sessions: np.ndarray) -> np.ndarray:
        now = self.positions.shape[0]
        weights: np.ndarray = np.exp(-(now - sessions) / self.recency_decay).astype(np.float32)
        return weights

    def _votes(self, neighbours: sp.csr_matrix, similarity: np.ndarray,
               prefix_items: np.ndarray) -> np.ndarray:
        # each neighbour's position of its latest-in-the-prefix shared item
        shared = neighbours[:, prefix_items].toarray()  # positions, 0 = absent
        present = shared > 0
        # prefix_items are ordered by their last click in the prefix: the latest last
        latest = present.shape[1] - 1 - np.argmax(present[:, ::-1], axis=1)
        anchor = shared[np.arange(shared.shape[0]), latest]
        votes = neighbours.copy()
        row = np.repeat(np.arange(votes.shape[0]), np.diff(votes.indptr))
        votes.data = similarity[row] * np.exp(-np.abs(votes.data - anchor[row])
                                              / self.neighbour_decay)
        return np.asarray(votes.sum(axis=0)).ravel()


class SLIST(SessionModel):
    """A closed-form linear item-item model in the manner of SLIST (Choi et al., WWW 2021):
    B minimises alpha ||X - X B||^2 + (1 - alpha) ||T - S B||^2 + reg ||B||^2, where X is
    sessions x items (which items a session holds: SLIS) and S -> T are every prefix's last
    `horizon` items, weighing exp(-distance / `position_decay`), -> its next item (SLIT):
    B = (alpha X'X + (1 - alpha) S'S + reg I)^-1 (alpha X'X + (1 - alpha) S'T). Unlike
    SLIS, B's diagonal is not forced to 0: a repeat is scored like any item (and then by
    the repeat boost). A prefix, weighed like S, scores q B.

    Memory: B over all 37k items of RetailRocket would be 11 GB in float64 and its inverse
    hours of work on 2 cores; B is restricted to the `vocabulary` most clicked items
    (float64 while solving, float32 when kept); the other items score 0 (popularity
    orders them)."""

    name = "slist"
    search_space = {"repeat_boost": [-1.0, 0.3, 1.0, 5.0], "alpha": [0.0, 0.25, 0.75],
                    "reg": [10.0, 1000.0], "position_decay": [1.0, 4.0]}
    """Repeats first: each fit solves an 8,000-item system (about 45 s on 2 cores)."""

    # set by fit
    vocabulary_items: np.ndarray
    """The item ids B covers (the `vocabulary` most clicked), ascending."""
    weights: np.ndarray
    """B, vocabulary x vocabulary (float32)."""

    def __init__(self, vocabulary: int = 8000, alpha: float = 0.5, reg: float = 100.0,
                 position_decay: float = 2.0, horizon: int = 10, repeat_boost: float = 2.0,
                 **common: float) -> None:
        super().__init__(repeat_boost=repeat_boost, **common)
        if vocabulary < 1 or not 0 <= alpha <= 1 or reg <= 0 or position_decay <= 0 \
                or horizon < 1:
            raise ConfigError("slist needs vocabulary >= 1, 0 <= alpha <= 1, reg > 0, "
                              "position_decay > 0 and horizon >= 1")
        self.vocabulary, self.alpha, self.reg = int(vocabulary), float(alpha), float(reg)
        self.position_decay, self.horizon = float(position_decay), int(horizon)

    def _codes(self) -> np.ndarray:
        cached: npt.NDArray[np.int64] | None = getattr(self, "_derived_codes", None)
        if cached is None:
            cached = np.full(self.n_items + 1, -1, dtype=np.int64)
            cached[self.vocabulary_items] = np.arange(self.vocabulary_items.size)
            self._derived_codes = cached
        return cached

    def _prefix_matrix(self, prefixes: Sequence[Sequence[int]]) -> sp.csr_matrix:
        codes = self._codes()
        rows: list[int] = []
        cols: list[int] = []
        data: list[float] = []
        for row, prefix in enumerate(prefixes):
            recent = prefix[-self.horizon:]
            for distance, item in enumerate(reversed(recent)):
                if codes[item] >= 0:
                    rows.append(row)
                    cols.append(codes[item])
                    data.append(np.exp(-distance / self.position_decay))
        return sp.csr_matrix((data, (rows, cols)), dtype=np.float64,
                             shape=(len(prefixes), self.vocabulary_items.size))

    def _fit(self, sessions: list[list[int]]) -> None:
        counts = np.bincount(np.concatenate([np.asarray(s) for s in sessions]),
                             minlength=self.n_items + 1)
        counts[0] = 0
        size = min(self.vocabulary, int((counts > 0).sum()))
        self.vocabulary_items = np.sort(np.argsort(-counts, kind="stable")[:size])
        codes = self._codes()
        held = [np.unique(codes[np.asarray(s)]) for s in sessions]
        held = [h[h >= 0] for h in held]
        x = sp.csr_matrix((np.ones(sum(h.size for h in held)),
                           (np.repeat(np.arange(len(held)), [h.size for h in held]),
                            np.concatenate(held))), shape=(len(held), size))
        prefixes: list[list[int]] = []
        next_codes: list[int] = []
        for s in sessions:
            for end in range(1, len(s)):
                prefixes.append(s[:end])
                next_codes.append(codes[s[end]])
        targets = np.asarray(next_codes, dtype=np.int64)
        keep = np.flatnonzero(targets >= 0)
        inputs = self._prefix_matrix([prefixes[i] for i in keep])
        nexts = sp.csr_matrix((np.ones(keep.size), (np.arange(keep.size), targets[keep])),
                              shape=(keep.size, size))
        gram_x = (x.T @ x).toarray()
        gram = self.alpha * gram_x + (1 - self.alpha) * (inputs.T @ inputs).toarray()
        gram[np.diag_indices(size)] += self.reg
        target = self.alpha * gram_x + (1 - self.alpha) * (inputs.T @ nexts).toarray()
        del gram_x
        self.weights = np.linalg.solve(gram, target).astype(np.float32)

    def _raw_scores(self, prefixes: list[list[int]]) -> np.ndarray:
        out = np.zeros((len(prefixes), self.n_items + 1), dtype=np.float32)
        out[:, self.vocabulary_items] = self._prefix_matrix(prefixes).astype(np.float32) \
            @ self.weights
        return np.maximum(out, 0.0)
