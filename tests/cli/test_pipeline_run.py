"""`recsys pipeline run --runner container` refuses, before anything runs, a setup whose
steps would write to this machine's disk (each step sees only the network), naming every
problem; and passes only credentials, not the host's environment, to the steps."""
from recsys.cli.main import main
from recsys.pipelines.local_runner import container_environment


def test_the_container_runner_refuses_local_state_naming_each_problem(tmp_path, monkeypatch,
                                                                     caplog):
    monkeypatch.setenv("RECSYS_STATE_DIR", str(tmp_path / "state"))
    source = tmp_path / "shop.jsonl"
    source.write_text("")
    code = main(["pipeline", "run", "--runner", "container", "--source", str(source)])
    assert code == 2
    message = caplog.text
    assert "cannot run the steps in containers" in message
    assert f"the source must be in S3 (s3://...), not '{source}'" in message
    assert "the lake must be in S3" in message
    assert "MLflow must be a server" in message
    assert "Feast must use the production profile" in message
    assert not (tmp_path / "state" / "kfp").exists()  # refused before any step


def test_only_credentials_reach_the_steps(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "secret")
    monkeypatch.setenv("RECSYS_COLLECTOR_WRITE_KEYS", "not-for-steps")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    passed = container_environment()
    assert passed["AWS_ACCESS_KEY_ID"] == "key" and passed["MLFLOW_TRACKING_PASSWORD"] == "secret"
    assert "RECSYS_COLLECTOR_WRITE_KEYS" not in passed and "PATH" not in passed
    assert "AWS_SESSION_TOKEN" not in passed
