"""`recsys bench models --protocol next-item | leave-one-out` on tiny files in the
published layouts: one row per session model, the protocol's metrics as fractions."""
import json
import pickle

import pytest

from recsys.benchmarks.models_bench import bench_models
from recsys.benchmarks.session_bench import DEFAULT_TUNE
from recsys.cli.main import main
from recsys.core.errors import ConfigError
from recsys.core.models.session_ensemble import MEMBERS
from recsys.core.models.session_zoo import build_session_model

TRAIN = [[1, 2, 3], [4, 5], [1, 2], [4, 5, 6], [2, 3], [1, 2, 3]] * 5


@pytest.fixture
def srgnn_dir(tmp_path):
    folder = tmp_path / "rr-tiny"
    folder.mkdir()
    (folder / "all_train_seq.txt").write_bytes(pickle.dumps(TRAIN, protocol=3))
    test = ([[1], [1, 2], [4], [6]], [2, 3, 5, 1])
    (folder / "test.txt").write_bytes(pickle.dumps(test, protocol=3))
    return folder


def test_next_item_rows(srgnn_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "models", "--ratings", str(srgnn_dir), "--format", "srgnn",
                 "--protocol", "next-item", "--tune", "3"]) == 0
    result = json.loads((tmp_path / "benchmarks/results/models-rr-tiny-next-item.json")
                        .read_text())
    rows = {row["model"]: row for row in result["rows"]}
    assert list(rows) == ["sequential_rules", "sknn", "vsknn", "stan", "ensemble"]
    for row in rows.values():
        # 1 -> 2, (1, 2) -> 3 and 4 -> 5 are learnt; 6 -> 1 never happens
        assert row["precision_at_20"] == 1.0 and row["precision_at_10"] == 1.0
        assert 0.25 <= row["mrr_at_20"] <= 1.0 and row["cases"] == 4
        assert row["fit_seconds"] > 0 and row["ms_per_prediction"] > 0
        assert row["tuning"]["fits"] == 3
    assert result["published"]["rows"]["SR-GNN"]["precision_at_20"] == 0.503
    assert result["test_cases"] == 4 and "newest 10%" in result["validation"]


def test_next_item_tunes_by_default_and_tune_0_keeps_the_class_defaults(srgnn_dir, tmp_path,
                                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["bench", "models", "--ratings", str(srgnn_dir), "--format", "srgnn",
            "--protocol", "next-item", "--models", "sequential_rules,stan,vsknn,ensemble"]
    assert main(args) == 0
    path = tmp_path / "benchmarks/results/models-rr-tiny-next-item.json"
    rows = {row["model"]: row for row in json.loads(path.read_text())["rows"]}
    # DEFAULT_TUNE (16) fits at most; a candidate equal to the current value is skipped:
    # the rules try 6 repeat boosts, 4 windows and 3 "recent" besides their defaults
    assert rows["stan"]["tuning"]["fits"] == DEFAULT_TUNE["next-item"] == 16
    assert rows["sequential_rules"]["tuning"]["fits"] == 1 + 6 + 4 + 3
    # 4 repeat boosts and 3 weights for each of the 3 members
    assert rows["ensemble"]["tuning"]["fits"] == 1 + 4 + 3 * 3
    members = rows["ensemble"]["params"]["member_params"]
    weights = {m: rows["ensemble"]["params"][f"weight_{m}"] for m in MEMBERS}
    for member in MEMBERS:  # the fitted ones carry the parameters tuned for them alone
        if weights[member] > 0:
            assert members[member] == {**rows[member]["params"], "repeat_boost": 0.0}

    assert main([*args, "--tune", "0"]) == 0
    rows = {row["model"]: row for row in json.loads(path.read_text())["rows"]}
    assert "tuning" not in rows["stan"]
    assert rows["stan"]["params"] == build_session_model("stan").params()
    assert rows["ensemble"]["params"] == build_session_model("ensemble").fit(
        TRAIN, 6).params()


def test_leave_one_out_rows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "video-tiny.txt"
    path.write_text("".join(f"{u} {i}\n" for u in range(1, 21)
                            for i in ([1, 2, 3, 4] if u % 2 else [5, 6, 7])))
    assert main(["bench", "models", "--ratings", str(path), "--format", "sequences",
                 "--protocol", "leave-one-out", "--models", "sknn,sequential_rules"]) == 0
    result = json.loads((tmp_path / "benchmarks/results/models-video-tiny-leave-one-out.json")
                        .read_text())
    assert [row["model"] for row in result["rows"]] == ["sknn", "sequential_rules"]
    for row in result["rows"]:
        assert row["hit_at_10"] == 1.0 and row["hit_at_20"] == 1.0 and row["cases"] == 20
        assert 0 < row["ndcg_at_10"] <= row["ndcg_at_20"] <= 1.0
    assert result["test_users"] == 20 and "all items" in result["ranking"]


def test_wrong_format_or_model_is_refused(srgnn_dir):
    with pytest.raises(ConfigError, match="reads --format srgnn"):
        bench_models(str(srgnn_dir), "sequences", "next-item")
    with pytest.raises(ConfigError, match="unknown session model"):
        bench_models(str(srgnn_dir), "srgnn", "next-item", "ease")
    with pytest.raises(ConfigError, match="apply to --protocol topn-stratified"):
        bench_models(str(srgnn_dir), "srgnn", "next-item", params_from="x.json")
