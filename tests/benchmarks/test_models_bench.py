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


def test_movielens_100k_is_read_whole_with_its_genres(ml100k_dir):
    from recsys.benchmarks.datasets import load_movielens

    data = load_movielens(ml100k_dir)
    assert len(data.interactions) == len((ml100k_dir / "u.data").read_text().splitlines())
    items = data.items.set_index("item_id")
    assert items.loc["1", "title"] == "Misérables, Les (1995)"  # latin-1 decoded
    assert items.loc["1", "category"] == "Adventure"
    assert items.loc["2", "category"] == "Animation|Drama"
    assert items.loc["3", "category"] == "Action" and len(items) == 20


def test_recbole_atomic_files_of_movielens_read_like_u_data(tmp_path):
    from recsys.benchmarks.datasets import load_movielens

    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "ml-100k.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "196\t242\t3\t881250949\n186\t302\t4\t891717742\n")
    (folder / "ml-100k.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "242\tKolya\t1996\tComedy\n302\tL.A. Confidential\t1997\t"
        "Crime Film-Noir Mystery Thriller\n")
    data = load_movielens(folder)
    assert data.name == "ml-100k"
    assert data.interactions[["user_id", "item_id", "rating"]].values.tolist() == [
        ["196", "242", 3.0], ["186", "302", 4.0]]
    assert str(data.interactions["timestamp"].iloc[0]) == "1997-12-04 15:55:49+00:00"
    items = data.items.set_index("item_id")
    assert items.loc["302", "category"] == "Crime|Film-Noir|Mystery|Thriller"
    assert items.loc["242", "title"] == "Kolya"
    (folder / "ml-100k.item").unlink()
    assert load_movielens(folder).items is None
    (folder / "other.inter").write_text("user_id:token\n")
    with pytest.raises(ConfigError, match="2 .inter files"):
        load_movielens(folder)


def test_models_that_need_metadata_are_skipped_with_a_note_not_a_crash(ml100k_dir, tmp_path,
                                                                        monkeypatch):
    from recsys.benchmarks.models_bench import bench_models

    (ml100k_dir / "u.item").unlink()
    monkeypatch.chdir(tmp_path)
    result = bench_models(str(ml100k_dir), "movielens", "topn-stratified",
                          "item_knn,content,hybrid")
    rows = {row["model"]: row for row in result["rows"]}
    assert 0 <= rows["item_knn"]["ndcg_at_10"] <= 1
    for name in ("content", "hybrid"):
        assert "needs item metadata" in rows[name]["skipped"] and "ndcg_at_10" not in rows[name]


def test_tuning_searches_on_the_training_part_and_the_blend_takes_the_tuned_parts(
        ratings_dir, tmp_path, monkeypatch):
    from recsys.benchmarks.models_bench import bench_models

    monkeypatch.chdir(tmp_path)
    result = bench_models(str(ratings_dir), "movielens", "topn-stratified",
                          "item_knn,lightfm_warp,ease,blend", tune=3)
    rows = {row["model"]: row for row in result["rows"]}
    for name in ("item_knn", "lightfm_warp", "ease"):
        assert rows[name]["tuning"]["trials"] == 3
        assert 0 <= rows[name]["tuning"]["validation_ndcg_at_10"] <= 1
    assert "tuning" not in rows["blend"]  # its weights are chosen inside its own fit
    assert rows["blend"]["params"]["parts"] == [[name, rows[name]["params"]]
                                                for name in ("ease", "lightfm_warp", "item_knn")]
    assert rows["blend"]["params"]["step"] == 0.05
    with pytest.raises(ConfigError, match="--tune and --params-from apply to"):
        bench_models(str(ratings_dir), "movielens", "ratings-5fold", "svd", tune=3)


def test_parameters_tuned_on_one_data_set_are_judged_on_another(ratings_dir, ml100k_dir,
                                                                   tmp_path, monkeypatch):
    from recsys.benchmarks.models_bench import bench_models

    monkeypatch.chdir(tmp_path)
    tuned = bench_models(str(ratings_dir), "movielens", "topn-stratified", "item_knn,ease",
                         name="tuning-set", tune=4)
    tuned_params = {row["model"]: row["params"] for row in tuned["rows"]}
    result_file = tmp_path / "benchmarks/results/models-tuning-set.json"
    judged = bench_models(str(ml100k_dir), "movielens", "topn-stratified",
                          "item_knn,ease,popularity", params_from=str(result_file))
    rows = {row["model"]: row for row in judged["rows"]}
    assert judged["params_tuned_on"] == tuned["dataset"]
    assert judged["params_from"] == str(result_file)
    for name in ("item_knn", "ease"):
        assert rows[name]["params"] == tuned_params[name]
        assert rows[name]["tuning"] == {"params_from_earlier_run": True}
        assert 0 <= rows[name]["ndcg_at_10"] <= 1
    assert rows["popularity"]["params"] == {"popularity_half_life_days": 0.0}  # not tuned
    with pytest.raises(ConfigError, match="exclude each other"):
        bench_models(str(ml100k_dir), "movielens", "topn-stratified", "ease", tune=2,
                     params_from=str(result_file))
    untuned = bench_models(str(ratings_dir), "movielens", "topn-stratified", "ease",
                           name="untuned")
    with pytest.raises(ConfigError, match="no tuned model"):
        bench_models(str(ml100k_dir), "movielens", "topn-stratified", "ease",
                     params_from=str(tmp_path / "benchmarks/results/models-untuned.json"))
    assert untuned["rows"][0]["params"] == {}
