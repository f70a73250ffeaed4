"""Published reference models, run on our split: Cornac's BiVAE and BPR with the parameters
of microsoft/recommenders' MovieLens benchmark (examples/06_benchmarks/movielens.ipynb).

This script runs in its own environment (`make reference-env`: cornac + the CPU build of
PyTorch), never in the project's: `recsys bench models --protocol topn-stratified
--reference bivae,bpr` writes the training split to Parquet, runs this script once per
model and scores the returned top-k lists with the project's own metrics, so the reference
rows and ours share one split, one candidate rule and one metric implementation.

Input: a Parquet file of training interactions (user_id, item_id, rating) and a Parquet file
with the users to rank for (user_id). Output: a Parquet file of user_id, item_id, rank,
score - the top k items per user among the training items the user has not rated.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import pandas as pd

SEED = 42
PARAMS = {
    "bivae": {"k": 100, "encoder_structure": [200], "act_fn": "tanh", "likelihood": "pois",
              "n_epochs": 500, "batch_size": 1024, "learning_rate": 0.001, "seed": SEED},
    "bpr": {"k": 200, "max_iter": 200, "learning_rate": 0.01, "lambda_reg": 1e-3,
            "seed": SEED},
}
"""microsoft/recommenders' benchmark parameters (its `use_gpu` is dropped: CPU here)."""


def build(name: str, overrides: dict):
    import cornac

    params = {**PARAMS[name], **overrides}
    if name == "bivae":
        import torch

        torch.manual_seed(SEED)
        return cornac.models.BiVAECF(use_gpu=False, verbose=False, **params)
    return cornac.models.BPR(verbose=False, **params)


def top_k(model, train_set, users: np.ndarray, k: int) -> pd.DataFrame:
    """Score every training item for each known user, drop the items the user rated, keep k.
    Users unknown to the training set get no list (they count as misses, as for our models).
    """
    item_ids = np.asarray(train_set.item_ids)
    known = [u for u in users if u in train_set.uid_map]
    frames = []
    for user in known:
        index = train_set.uid_map[user]
        scores = np.asarray(model.score(index), dtype=np.float64).copy()
        seen = train_set.matrix.getrow(index).indices
        scores[seen] = -np.inf
        count = min(k, int(np.isfinite(scores).sum()))
        best = np.argpartition(-scores, count - 1)[:count] if count else np.array([], int)
        best = best[np.argsort(-scores[best], kind="stable")]
        frames.append(pd.DataFrame({"user_id": user, "item_id": item_ids[best],
                                    "rank": np.arange(1, len(best) + 1),
                                    "score": scores[best]}))
    columns = ["user_id", "item_id", "rank", "score"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(PARAMS), required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--users", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--params", default="{}", help="JSON overrides of the parameters")
    args = parser.parse_args(argv)
    import cornac

    train = pd.read_parquet(args.train, columns=["user_id", "item_id", "rating"])
    users = pd.read_parquet(args.users)["user_id"].to_numpy()
    train_set = cornac.data.Dataset.from_uir(
        train.astype({"user_id": str, "item_id": str}).itertuples(index=False), seed=SEED)
    model = build(args.model, json.loads(args.params))
    started = time.perf_counter()
    model.fit(train_set)
    fitted = time.perf_counter()
    recs = top_k(model, train_set, users.astype(str), args.k)
    predicted = time.perf_counter()
    recs.to_parquet(args.out, index=False)
    json.dump({"fit_seconds": fitted - started, "predict_seconds": predicted - fitted,
               "params": {**PARAMS[args.model], **json.loads(args.params)},
               "cornac": cornac.__version__}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
