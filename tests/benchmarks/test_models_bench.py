"""`recsys bench models` on a small MovieLens-format file: rows, protocols, the JSON."""
import json

import pytest

from recsys.cli.main import main
from recsys.core.errors import ConfigError


def test_bench_models_writes_one_row_per_model(ratings_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "models", "--ratings", str(ratings_dir), "--format", "movielens",
                 "--models", "svd,knn_baseline,item_knn,content"]) == 0
    ratings = json.loads((tmp_path / "benchmarks/results/models-ml-tiny-ratings-5fold.json")
                         .read_text())
    rows = {row["model"]: row for row in ratings["rows"]}
    assert ratings["protocol"] == "ratings-5fold" and ratings["machine"]["cpus"] >= 1
    assert rows["item_knn"]["skipped"] == "predicts no ratings"
    for name in ("svd", "knn_baseline"):
        assert 0.3 < rows[name]["rmse"] < 1.5 and rows[name]["folds"] == 5
    topn = json.loads((tmp_path / "benchmarks/results/models-ml-tiny-topn-stratified.json")
                      .read_text())
    assert [row["model"] for row in topn["rows"]] == ["svd", "knn_baseline", "item_knn",
                                                      "content"]
    for row in topn["rows"]:
        assert 0 <= row["ndcg_at_10"] <= 1 and row["fit_seconds"] > 0
        assert row["users_per_second"] > 0
    assert topn["published"]["rows"]["BiVAE"]["ndcg_at_10"] == 0.475


def test_bench_models_rejects_unknown_models(ratings_dir):
    from recsys.benchmarks.models_bench import bench_models

    with pytest.raises(ConfigError, match="unknown model"):
        bench_models(str(ratings_dir), "movielens", "topn-stratified", "svd,bivae")
