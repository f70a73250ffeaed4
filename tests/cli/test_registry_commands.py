import json

from mlflow import MlflowClient

from recsys.cli.main import main
from recsys.core.registry import register_candidate


def test_show_promote_rollback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RECSYS_STATE_DIR", str(tmp_path))
    uri = f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.create_run(client.create_experiment("x"))
    for _ in range(2):
        register_candidate(client, "recsys-recommender", "runs:/x/model", run.info.run_id)
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
