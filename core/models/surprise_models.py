"""scikit-surprise behind the Recommender interface: SVD, SVD++, KNNBaseline and
KNNWithMeans.

Surprise fits the model; the learned arrays (biases, factors, similarities, baselines) are
then re-indexed to the catalogue so that top-N ranking is NumPy over whole users - never one
`predict()` call per user-item pair - and the stored model needs no Surprise trainset.
The neighbourhood estimate is Surprise's own (k nearest neighbours among those that rated
the target, positive similarities only, `min_k`), computed for every item of a user at once;
only exact ties at the k-th neighbour may be broken differently from Surprise.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from recsys.core.data.columns import Columns
from recsys.core.models.ratings import RatingRecommender, rating_frame

if TYPE_CHECKING:  # scikit-surprise ships no type hints: these name what flows, as Any
    from surprise import AlgoBase, Trainset

C = Columns
BaseParts = tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]]
"""(constant, per-user offset, per-item offset) of a neighbourhood model's base estimate."""


def surprise_trainset(ratings: pd.DataFrame, scale: tuple[float, float]) -> Trainset:
    from surprise import Dataset, Reader

    data = Dataset.load_from_df(ratings[[C.user_id, C.item_id, C.rating]],
                                Reader(rating_scale=scale))
    return data.build_full_trainset()


def inner_positions(raw_to_inner: dict[object, int], raw_ids: np.ndarray
                    ) -> npt.NDArray[np.int64]:
    """Surprise inner id per catalogue id (-1 where Surprise has not seen it)."""
    return np.array([raw_to_inner.get(r, -1) for r in raw_ids], dtype=np.int64)


def _take(values: np.ndarray, positions: np.ndarray) -> npt.NDArray[np.float64]:
    """values[positions] with zeros (rows of zeros) where position is -1."""
    out = np.zeros((positions.size, *values.shape[1:]), dtype=np.float64)
    known = positions >= 0
    out[known] = values[positions[known]]
    return out


class SurpriseRecommender(RatingRecommender):
    """Shared part: rating source, Surprise fit and the rating matrix."""

    ratings: sp.csr_matrix
    """users x items ratings, one per pair (set by fit)."""

    def __init__(self, rating_source: str = "auto", popularity_half_life_days: float = 7.0
                 ) -> None:
        super().__init__(rating_source, popularity_half_life_days)

    @abstractmethod
    def make_algo(self) -> AlgoBase:
        """A fresh, unfitted Surprise algorithm with this model's hyperparameters."""

    def _fit(self, matrix: sp.csr_matrix, interactions: pd.DataFrame) -> None:
        ratings, self.rating_scale = rating_frame(interactions, self.rating_source,
                                                  f"{self.name}.fit")
        self.explicit_ratings = bool(ratings.attrs.get("explicit"))
        # one rating per pair, input order kept (SVD's SGD visits ratings in this order)
        ratings = ratings.drop_duplicates([C.user_id, C.item_id], keep="last")
        rows = ratings[C.user_id].map(self.user_index).to_numpy()
        cols = ratings[C.item_id].map(self.item_index).to_numpy()
        self.ratings = sp.csr_matrix((ratings[C.rating].to_numpy(dtype=np.float64),
                                      (rows, cols)), shape=matrix.shape)
        trainset = surprise_trainset(ratings, self.rating_scale)
        self.global_mean = float(trainset.global_mean)
        algo = self.make_algo()
        algo.fit(trainset)
        self._keep(algo, trainset,
                   inner_positions(trainset._raw2inner_id_users, self.users),
                   inner_positions(trainset._raw2inner_id_items, self.items))

    @abstractmethod
    def _keep(self, algo: AlgoBase, trainset: Trainset, user_pos: np.ndarray,
              item_pos: np.ndarray) -> None:
        """Copy what scoring needs out of the fitted algorithm (catalogue order)."""

    def _unknown_item_estimate(self, user_row: int) -> float:
        """Surprise's answer for an item it never saw: the global mean (+ the user's bias
        for the baseline models)."""
        return self.global_mean


class SVDRecommender(SurpriseRecommender):
    """Funk SVD with biases (Surprise `SVD`): r = mu + b_u + b_i + p_u . q_i."""

    name = "svd"
    search_space = {"n_factors": [50, 100, 150], "n_epochs": [20, 30, 40],
                    "lr_all": [0.005, 0.01], "reg_all": [0.02, 0.05, 0.1]}

    def __init__(self, n_factors: int = 100, n_epochs: int = 30, lr_all: float = 0.01,
                 reg_all: float = 0.05, random_state: int = 0, rating_source: str = "auto",
                 popularity_half_life_days: float = 7.0) -> None:
        super().__init__(rating_source, popularity_half_life_days)
        self.n_factors, self.n_epochs = n_factors, n_epochs
        self.lr_all, self.reg_all, self.random_state = lr_all, reg_all, random_state

    def make_algo(self) -> AlgoBase:
        from surprise import SVD

        return SVD(n_factors=self.n_factors, n_epochs=self.n_epochs, lr_all=self.lr_all,
                   reg_all=self.reg_all, random_state=self.random_state)

    def _unknown_item_estimate(self, user_row: int) -> float:
        user_bias = float(self.user_bias[user_row]) if user_row >= 0 else 0.0
        return self.global_mean + user_bias

    def _keep(self, algo: AlgoBase, trainset: Trainset, user_pos: np.ndarray,
              item_pos: np.ndarray) -> None:
        self.user_bias, self.user_factors = _take(algo.bu, user_pos), _take(algo.pu, user_pos)
        self.item_bias, self.item_factors = _take(algo.bi, item_pos), _take(algo.qi, item_pos)

    def _estimates(self, user_row: int, item_rows: np.ndarray) -> npt.NDArray[np.float64]:
        base: npt.NDArray[np.float64] = self.global_mean + self.item_bias[item_rows]
        if user_row < 0:
            return base
        estimates: npt.NDArray[np.float64] = base + self.user_bias[user_row] + \
            self.item_factors[item_rows] @ self.user_factors[user_row]
        return estimates

    def _score(self, user_rows: np.ndarray) -> npt.NDArray[np.float64]:
        scores: npt.NDArray[np.float64] = (
            self.global_mean + self.user_bias[user_rows][:, None] + self.item_bias[None, :]
            + self.user_factors[user_rows] @ self.item_factors.T)
        return scores


class SVDppRecommender(SVDRecommender):
    """SVD++ (Koren 2008, Surprise `SVDpp`): SVD whose user vector also sums the implicit
    factors y_j of every item the user rated, p_u + |N(u)|^-1/2 sum_j y_j. That sum is
    fixed once fitted, so it is folded into the user factors and scoring is SVD's."""

    name = "svdpp"
    search_space = {"n_factors": [10, 20, 50], "n_epochs": [20, 30],
                    "lr_all": [0.005, 0.007], "reg_all": [0.02, 0.05]}

    def __init__(self, n_factors: int = 20, n_epochs: int = 20, lr_all: float = 0.007,
                 reg_all: float = 0.02, random_state: int = 0, rating_source: str = "auto",
                 popularity_half_life_days: float = 7.0) -> None:
        super().__init__(n_factors, n_epochs, lr_all, reg_all, random_state, rating_source,
                         popularity_half_life_days)

    def make_algo(self) -> AlgoBase:
        from surprise import SVDpp

        return SVDpp(n_factors=self.n_factors, n_epochs=self.n_epochs, lr_all=self.lr_all,
                     reg_all=self.reg_all, random_state=self.random_state,
                     cache_ratings=True)

    def _keep(self, algo: AlgoBase, trainset: Trainset, user_pos: np.ndarray,
              item_pos: np.ndarray) -> None:
        implicit = np.zeros_like(algo.pu)
        for inner, rated in trainset.ur.items():
            items = np.fromiter((j for j, _ in rated), dtype=np.int64)
            implicit[inner] = algo.yj[items].sum(axis=0) / np.sqrt(items.size)
        self.user_bias, self.user_factors = _take(algo.bu, user_pos), \
            _take(algo.pu + implicit, user_pos)
        self.item_bias, self.item_factors = _take(algo.bi, item_pos), _take(algo.qi, item_pos)


class NeighbourhoodRecommender(SurpriseRecommender):
    """Surprise's k-NN estimate: base(x, y) + sum_k sim(x, nb) (r(nb, y) - base(nb, y)) /
    sum_k sim(x, nb), over the k most similar neighbours nb that rated y (positive sims)."""

    search_space = {"k": [20, 40, 80], "user_based": [True, False],
                    "similarity": ["pearson_baseline", "msd", "cosine"]}

    def __init__(self, k: int = 40, min_k: int = 1, user_based: bool = True,
                 similarity: str = "pearson_baseline", shrinkage: int = 100,
                 rating_source: str = "auto", popularity_half_life_days: float = 7.0
                 ) -> None:
        super().__init__(rating_source, popularity_half_life_days)
        self.k, self.min_k, self.user_based = k, min_k, user_based
        self.similarity_name, self.shrinkage = similarity, shrinkage

    def sim_options(self) -> dict[str, str | bool | int]:
        options: dict[str, str | bool | int] = {"name": self.similarity_name,
                                                "user_based": self.user_based}
        if self.similarity_name == "pearson_baseline":
            options["shrinkage"] = self.shrinkage
        return options

    @abstractmethod
    def _base_parts(self, algo: AlgoBase, trainset: Trainset,
                    user_pos: np.ndarray, item_pos: np.ndarray) -> BaseParts:
        """(constant, per-user offset, per-item offset) of the base estimate."""

    def _keep(self, algo: AlgoBase, trainset: Trainset, user_pos: np.ndarray,
              item_pos: np.ndarray) -> None:
        self.constant, self.user_offset, self.item_offset = self._base_parts(
            algo, trainset, user_pos, item_pos)
        x_pos = user_pos if self.user_based else item_pos
        sim = np.zeros((x_pos.size, x_pos.size), dtype=np.float32)
        known = np.flatnonzero(x_pos >= 0)
        sim[np.ix_(known, known)] = algo.sim[np.ix_(x_pos[known], x_pos[known])]
        self.sim = sim
        by_item = self.ratings.T.tocsr()
        # deviation of every training rating from its base estimate
        for matrix in (self.ratings, by_item):
            matrix.sort_indices()
        users_of = np.repeat(np.arange(by_item.shape[0]), np.diff(by_item.indptr))
        self.item_raters = by_item
        self.rater_deviation = by_item.data - (self.constant + self.user_offset[by_item.indices]
                                               + self.item_offset[users_of])

    def _estimates(self, user_row: int, item_rows: np.ndarray) -> npt.NDArray[np.float64]:
        base: npt.NDArray[np.float64] = self.constant + self.item_offset[item_rows]
        if user_row < 0:
            return base
        base = base + self.user_offset[user_row]
        if self.user_based:
            adjust = self._user_based_adjustment(user_row)[item_rows]
        else:
            adjust = self._item_based_adjustment(user_row, item_rows)
        estimates: npt.NDArray[np.float64] = base + adjust
        return estimates

    def _item_based_adjustment(self, user_row: int, item_rows: np.ndarray) -> np.ndarray:
        """x = items: neighbours of each target item among the items this user rated."""
        lo, hi = self.ratings.indptr[user_row], self.ratings.indptr[user_row + 1]
        rated = self.ratings.indices[lo:hi]
        deviation = self.ratings.data[lo:hi] - (self.constant + self.user_offset[user_row]
                                                + self.item_offset[rated])
        sims = self.sim[np.ix_(item_rows, rated)].astype(np.float64)
        if rated.size > self.k:
            top = np.argpartition(-sims, self.k - 1, axis=1)[:, :self.k]
            sims, deviation = np.take_along_axis(sims, top, axis=1), deviation[top]
        else:
            deviation = np.broadcast_to(deviation, sims.shape)
        return _weighted_mean(sims, deviation, self.min_k)

    def _user_based_adjustment(self, user_row: int) -> np.ndarray:
        """x = users: for every item, the k users most similar to this one that rated it."""
        raters = self.item_raters
        sims = self.sim[user_row, raters.indices].astype(np.float64)
        items = np.repeat(np.arange(raters.shape[0]), np.diff(raters.indptr))
        keep = np.ones(sims.size, dtype=bool)
        if np.diff(raters.indptr).max(initial=0) > self.k:
            order = np.lexsort((-sims, items))  # by item, most similar first
            rank = np.empty(sims.size, dtype=np.int64)
            rank[order] = np.arange(sims.size) - raters.indptr[items[order]]
            keep = rank < self.k
        positive = keep & (sims > 0)
        n = raters.shape[0]
        sum_sim = np.bincount(items[positive], sims[positive], minlength=n)
        sum_dev = np.bincount(items[positive], sims[positive] * self.rater_deviation[positive],
                              minlength=n)
        actual_k = np.bincount(items[positive], minlength=n)
        sum_dev[actual_k < self.min_k] = 0.0
        return np.divide(sum_dev, sum_sim, out=np.zeros(n), where=sum_sim > 0)


def _weighted_mean(sims: np.ndarray, deviation: np.ndarray, min_k: int) -> np.ndarray:
    positive = sims > 0
    weights = np.where(positive, sims, 0.0)
    sum_sim = weights.sum(axis=1)
    sum_dev = (weights * deviation).sum(axis=1)
    sum_dev[positive.sum(axis=1) < min_k] = 0.0
    mean: np.ndarray = np.divide(sum_dev, sum_sim, out=np.zeros_like(sum_sim), where=sum_sim > 0)
    return mean


class KNNBaselineRecommender(NeighbourhoodRecommender):
    """Surprise `KNNBaseline`: base = mu + b_u + b_i (ALS baselines)."""

    name = "knn_baseline"

    def make_algo(self) -> AlgoBase:
        from surprise import KNNBaseline

        return KNNBaseline(k=self.k, min_k=self.min_k, sim_options=self.sim_options(),
                           verbose=False)

    def _unknown_item_estimate(self, user_row: int) -> float:
        user_offset = float(self.user_offset[user_row]) if user_row >= 0 else 0.0
        return self.constant + user_offset

    def _base_parts(self, algo: AlgoBase, trainset: Trainset,
                    user_pos: np.ndarray, item_pos: np.ndarray) -> BaseParts:
        bu, bi = algo.compute_baselines()
        return float(trainset.global_mean), _take(bu, user_pos), _take(bi, item_pos)


class KNNWithMeansRecommender(NeighbourhoodRecommender):
    """Surprise `KNNWithMeans`: base = the mean rating of x (the user, or the item)."""

    name = "knn_with_means"

    def make_algo(self) -> AlgoBase:
        from surprise import KNNWithMeans

        return KNNWithMeans(k=self.k, min_k=self.min_k, sim_options=self.sim_options(),
                            verbose=False)

    def _base_parts(self, algo: AlgoBase, trainset: Trainset,
                    user_pos: np.ndarray, item_pos: np.ndarray) -> BaseParts:
        user_means = np.zeros(trainset.n_users)
        item_means = np.zeros(trainset.n_items)
        for inner, ratings in trainset.ur.items():
            user_means[inner] = np.mean([r for _, r in ratings])
        for inner, ratings in trainset.ir.items():
            item_means[inner] = np.mean([r for _, r in ratings])
        if self.user_based:
            return 0.0, _take(user_means, user_pos), np.zeros(item_pos.size)
        return 0.0, np.zeros(user_pos.size), _take(item_means, item_pos)
