import json

import pandas as pd
from mlflow import MlflowClient

from recsys.cli.main import main
from recsys.core.lifecycle.registry import aliases, register_candidate
from tests.factories import register_trained
from tests.serving.conftest import ROWS


def test_show_promote_rollback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECSYS_STATE_DIR", str(tmp_path))
    uri = f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    for model in ("popularity", "item_knn"):
        register_trained(uri, "recsys-recommender", frame, model, champion=False)
    assert main(["registry", "promote", "1", "--reason", "first"]) == 0
    assert main(["registry", "promote", "2", "--reason", "second"]) == 0
    capsys.readouterr()
    assert main(["registry", "rollback", "--reason", "bad CTR"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("champion of recsys-recommender is now version 1")
    shown = json.loads(out.split("\n", 1)[1])
    assert shown["aliases"] == {"champion": "1", "previous": "2", "challenger": "2"}
    assert main(["registry", "rollback", "--reason", "again"]) == 0  # back to version 2
    capsys.readouterr()
    assert main(["registry", "show"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["aliases"]["champion"] == "2"
    assert [(v["version"], v["promoted_by"]) for v in shown["versions"]] == [
        ("2", "rollback"), ("1", "rollback")]


def test_a_manual_promotion_of_a_version_without_a_loadable_model_is_refused(
        tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("RECSYS_STATE_DIR", str(tmp_path))
    uri = f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    frame = pd.DataFrame(ROWS, columns=["user_id", "item_id", "weight"])
    register_trained(uri, "recsys-recommender", frame, "popularity")
    run = client.create_run(client.create_experiment("x"))
    empty = register_candidate(client, "recsys-recommender", "runs:/x/model", run.info.run_id)
    assert main(["registry", "promote", empty, "--reason", "try"]) == 2
    assert f"recsys-recommender v{empty} cannot be loaded, so no alias moves" in caplog.text
    assert aliases(client, "recsys-recommender")["champion"] == "1"
