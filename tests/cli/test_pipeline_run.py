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


def test_overlapping_runs_each_print_their_own_version_and_outcome(tmp_path, monkeypatch,
                                                                  capsys):
    """Run A gates, run B gates and promotes meanwhile, A's promote finds the champion moved:
    A prints its own version refused as stale (it used to print B's "version 2 PROMOTED"),
    B its own promotion; a plain refusal exits 0 unless --strict-exit asks for 3."""
    import pandas as pd

    from recsys.cli import pipeline_commands
    from recsys.components.gate.component import promote_op
    from recsys.core.lifecycle.registry import aliases
    from recsys.core.lifecycle.tracking import client_for
    from recsys.core.settings import load_settings
    from tests.components.gate.test_component import NAME, evaluation_record, run_gate_body
    from tests.factories import logged_model
    from tests.serving.conftest import ROWS

    monkeypatch.setenv("RECSYS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("RECSYS_REGISTERED_MODEL_NAME", NAME)  # the gate bodies' model
    source = tmp_path / "shop.jsonl"
    source.write_text("")
    uri = load_settings().tracking_uri
    fitted = logged_model(uri, "candidates", pd.DataFrame(ROWS, columns=["user_id", "item_id",
                                                                         "weight"]))
    baseline = {"ndcg_at_10": 0.10, "coverage_at_10": 0.50, "recall_at_20": 0.20,
                "session_mrr_at_20": 0.30}
    better = {"ndcg_at_10": 0.20, "coverage_at_10": 0.50, "recall_at_20": 0.20,
              "session_mrr_at_20": 0.30}
    runs, second = [], {}

    def gate_and_promote(pipeline_root, caching, runner, environment, **params):
        """The gate and promote steps of one pipeline run (train and evaluate are given)."""
        runs.append(params.get("run_label", ""))
        champion = aliases(client_for(uri), params["registered_model"]).get("champion")
        record = evaluation_record(fitted, better, baseline, champion=champion and {
            "version": champion, "metrics": better})
        approved, outcome = run_gate_body(tmp_path, uri, record, f"run-{len(runs)}",
                                          run_label=runs[-1])
        if len(runs) == 1:  # run B starts after A's gate and ends before A's promote
            code = main(["pipeline", "run", "--source", str(source), "--strict-exit"])
            second.update(code=code, out=capsys.readouterr().out)
        if approved:
            promote_op.python_func(outcome=outcome, tracking_uri=uri,
                                   registered_model=params["registered_model"],
                                   registry_lock_url="")

    monkeypatch.setattr(pipeline_commands, "run_training_locally", gate_and_promote)
    code_a = main(["pipeline", "run", "--source", str(source), "--strict-exit"])
    out_a = capsys.readouterr().out
    code_b, out_b = second["code"], second["out"]
    assert "gate: item_knn as version 2 PROMOTED to champion" in out_b and code_b == 0
    assert ("gate: item_knn as version 1 approved by the gate but NOT promoted: the champion "
            "moved meanwhile") in out_a
    assert "gate compared with none, but the champion is now 2" in out_a
    assert "PROMOTED" not in out_a and code_a == 3

    assert main(["pipeline", "run", "--source", str(source)]) == 0  # refused: no gain over v2
    assert "gate: item_knn as version 3 NOT promoted (against champion v2)" in \
        capsys.readouterr().out


def test_the_run_options_reach_the_pipeline_as_one_gate_policy(tmp_path, monkeypatch):
    import pytest

    from recsys.cli import pipeline_commands

    class NotRun(Exception):
        """Stands in for the run: the parameters are what is checked."""

    monkeypatch.setenv("RECSYS_STATE_DIR", str(tmp_path / "state"))
    source = tmp_path / "shop.jsonl"
    source.write_text("")
    passed = {}

    def capture(pipeline_root, caching, runner, environment, **params):
        passed.update(params)
        raise NotRun

    monkeypatch.setattr(pipeline_commands, "run_training_locally", capture)
    run = ["pipeline", "run", "--source", str(source)]
    with pytest.raises(NotRun):
        main([*run, "--min-improvement", "0.05", "--require-significant",
              "--guardrail", "coverage_at_10=0.3", "--guardrail", "diversity_at_10=0"])
    assert passed["gate_policy"] == {
        "primary_metric": "ndcg_at_10", "min_relative_improvement": 0.05,
        "guardrails": {"coverage_at_10": 0.3, "diversity_at_10": 0.0},
        "require_significant": True}
    passed.clear()
    with pytest.raises(NotRun):
        main(run)
    assert passed["gate_policy"] == {
        "primary_metric": "ndcg_at_10", "min_relative_improvement": 0.01,
        "guardrails": {"coverage_at_10": 0.1, "recall_at_20": 0.02,
                       "session_mrr_at_20": 0.05},
        "require_significant": False}
    assert passed["session_model"] == "sequential_rules"
    for option, passed_name in (("stan", "stan"), ("none", "")):
        passed.clear()
        with pytest.raises(NotRun):
            main([*run, "--session-model", option])
        assert passed["session_model"] == passed_name


def test_a_bad_gate_option_is_refused_before_anything_runs(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("RECSYS_STATE_DIR", str(tmp_path / "state"))
    source = tmp_path / "shop.jsonl"
    source.write_text("")
    for bad in (["--guardrail", "coverage_at_10"], ["--guardrail", "coverage_at_10=-0.1"],
                ["--guardrail", "=0.1"], ["--guardrail", "a=0.1", "--guardrail", "a=0.2"],
                ["--min-improvement", "-0.5"]):
        assert main(["pipeline", "run", "--source", str(source), *bad]) == 2, bad
    assert "--guardrail expects METRIC=MAX_DROP" in caplog.text
    assert "--guardrail a given twice" in caplog.text
    assert "gate policy:" in caplog.text and "min_relative_improvement" in caplog.text
    assert not (tmp_path / "state" / "kfp").exists()


def test_guardrail_specs_parse_back_to_what_was_written_and_anything_else_is_refused():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from recsys.cli.pipeline_commands import parse_guardrails
    from recsys.core.errors import ConfigError

    names = st.text(st.characters(blacklist_characters="=", blacklist_categories=("Cs",)),
                    min_size=1, max_size=12).filter(lambda name: name.strip() == name)

    @settings(max_examples=200, deadline=None)
    @given(st.dictionaries(names, st.floats(min_value=0, max_value=1e6), max_size=4))
    def written(guardrails):
        specs = [f"{metric}={drop!r}" for metric, drop in guardrails.items()]
        assert parse_guardrails(specs) == guardrails

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.text(max_size=16), max_size=3))
    def anything(specs):
        try:
            parsed = parse_guardrails(specs)
        except ConfigError:
            return
        assert all(drop >= 0 and metric for metric, drop in parsed.items())

    written()
    anything()
