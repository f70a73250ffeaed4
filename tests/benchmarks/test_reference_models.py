"""Published reference models (Cornac BiVAE/BPR) run in .venv-reference on our split."""
import json

import numpy as np
import pandas as pd
import pytest

from recsys.benchmarks.reference_models import (
    parse_reference_names,
    reference_python,
    run_reference,
)
from recsys.cli.main import main
from recsys.core.errors import ConfigError


def two_taste_groups(seed: int = 0) -> pd.DataFrame:
    """Users 0-19 rate only items 100-119, users 20-39 only items 200-219 (integer ids)."""
    rng = np.random.default_rng(seed)
    rows = [(user, base + item, float(rng.integers(1, 6)))
            for user in range(40) for item in range(20)
            for base in ([100] if user < 20 else [200]) if rng.random() < 0.5]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])


def in_group_share(recs: pd.DataFrame) -> float:
    group_of_item = np.where(recs["item_id"] < 200, 0, 1)
    group_of_user = np.where(recs["user_id"] < 20, 0, 1)
    return float((group_of_item == group_of_user).mean())


@pytest.mark.slow  # runs in the side environment .venv-reference
@pytest.mark.parametrize("name,params", [("bpr", {"max_iter": 300}),
                                         ("bivae", {"n_epochs": 100, "batch_size": 16})])
def test_reference_model_learns_planted_groups_and_excludes_seen(name, params):
    train = two_taste_groups()
    run = run_reference(name, train, users=np.arange(40), k=5, params=params)
    recs = run.recommendations
    assert sorted(pd.unique(recs["user_id"])) == list(range(40))
    assert recs["user_id"].dtype.kind == "i" and recs["item_id"].dtype.kind == "i"
    assert recs.groupby("user_id")["rank"].apply(list).map(lambda r: r == [1, 2, 3, 4, 5]).all()
    seen = set(zip(train["user_id"], train["item_id"]))
    assert not any(pair in seen for pair in zip(recs["user_id"], recs["item_id"]))
    assert in_group_share(recs) > 0.9, in_group_share(recs)
    assert run.params[next(iter(params))] == next(iter(params.values()))
    assert run.library.startswith("cornac ") and run.fit_seconds > 0


@pytest.mark.slow  # runs in the side environment .venv-reference
def test_reference_model_gives_no_list_to_users_unknown_to_training():
    train = two_taste_groups()
    run = run_reference("bpr", train, users=np.array([3, 999]), k=3,
                        params={"max_iter": 5})
    assert set(run.recommendations["user_id"]) == {3}


@pytest.mark.slow  # runs in the side environment .venv-reference
def test_bench_models_adds_reference_rows_on_the_same_split(ratings_dir, tmp_path,
                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "models", "--ratings", str(ratings_dir), "--protocol",
                 "topn-stratified", "--models", "item_knn", "--reference", "bpr",
                 "--reference-params", '{"bpr": {"max_iter": 300}}']) == 0
    result = json.loads((tmp_path / "benchmarks/results/models-ml-tiny-topn-stratified.json")
                        .read_text())
    rows = {row["model"]: row for row in result["rows"]}
    assert list(rows) == ["item_knn", "reference_bpr"]
    reference = rows["reference_bpr"]
    assert reference["reference"].startswith("cornac ")
    assert reference["params"]["k"] == 200 and reference["params"]["max_iter"] == 300
    assert 0 < reference["ndcg_at_10"] <= 1 and 0 < reference["precision_at_10"] <= 1
    paired = reference["best_zoo_minus_reference_ndcg_at_10"]
    assert paired["model"] == "item_knn" and paired["users"] == 49  # 1 of 50 has no test rating
    assert paired["difference"] == pytest.approx(
        rows["item_knn"]["ndcg_at_10"] - reference["ndcg_at_10"])
    assert paired["low"] <= paired["difference"] <= paired["high"]


def test_unknown_reference_models_are_refused():
    assert parse_reference_names(" bivae, bpr ,") == ["bivae", "bpr"]
    with pytest.raises(ConfigError, match=r"unknown reference model\(s\) \['ease'\]"):
        parse_reference_names("bpr,ease")


def test_a_missing_reference_environment_says_how_to_build_it(monkeypatch, tmp_path):
    monkeypatch.setenv("RECSYS_REFERENCE_PYTHON", str(tmp_path / "nope" / "python"))
    with pytest.raises(ConfigError, match="make reference-env"):
        reference_python()


def test_reference_models_run_under_the_topn_protocol_only(ratings_dir):
    from recsys.benchmarks.models_bench import bench_models

    with pytest.raises(ConfigError, match="topn-stratified only"):
        bench_models(str(ratings_dir), "movielens", "ratings-5fold", "svd", reference="bpr")
    with pytest.raises(ConfigError, match=r"--reference-params names \['bivae'\]"):
        bench_models(str(ratings_dir), "movielens", "topn-stratified", "svd", reference="bpr",
                     reference_params={"bivae": {"k": 5}})
    with pytest.raises(ConfigError, match="must map model names to parameter objects"):
        bench_models(str(ratings_dir), "movielens", "topn-stratified", "svd", reference="bpr",
                     reference_params={"bpr": 5})
