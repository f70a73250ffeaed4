"""The monitoring pipeline: compiled with the training pipeline nested under dsl.If, and run
locally: no drift -> nothing; a shifted day -> drift -> retraining -> a new version."""
import pandas as pd
import pytest
import yaml
from kfp import local

from recsys.components.extract.extract import ExtractConfig, extract
from recsys.components.validate.rules import ValidationConfig
from recsys.components.validate.validate import validate_window
from recsys.core.data.lake import Lake
from recsys.core.data.synthetic.config import ShopConfig
from recsys.core.data.synthetic.generate import generate_shop, write_shop
from recsys.core.lifecycle.tracking import client_for
from recsys.core.settings import Settings
from recsys.pipelines.local_runner import run_training_locally
from recsys.pipelines.monitoring_pipeline import compile_pipeline, monitoring_pipeline


def test_compiles_with_retraining_under_a_condition(tmp_path):
    spec, platform = yaml.safe_load_all(open(compile_pipeline(str(tmp_path / "m.yaml"))).read())
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    monitor_secret = executors["exec-monitor-op"]["secretAsEnv"][0]
    assert monitor_secret["secretNameParameter"]["runtimeValue"]["constant"] == \
        "recsys-mlflow-monitoring"  # read-only towards the registry
    assert executors["exec-gate-op"]["secretAsEnv"][0]["secretNameParameter"]["runtimeValue"][
        "constant"] == "recsys-mlflow-pipeline"  # the nested retrain writes as the pipeline
    for step in ("monitor-op", "lake-retention-op"):  # the lake's S3 credentials
        assert "recsys-s3" in {secret["secretNameParameter"]["runtimeValue"]["constant"]
                               for secret in executors[f"exec-{step}"]["secretAsEnv"]}, step
    tasks = spec["root"]["dag"]["tasks"]  # the steps inside an exit handler
    assert set(tasks) == {"exit-handler-1", "report-outcome-op"}
    tasks = spec["components"][tasks["exit-handler-1"]["componentRef"]["name"]]["dag"]["tasks"]
    assert set(tasks) == {"monitor-op", "condition-2", "lake-retention-op"}
    assert "monitor-op" in tasks["condition-2"]["triggerPolicy"]["condition"]
    inner = spec["components"][tasks["condition-2"]["componentRef"]["name"]]["dag"]["tasks"]
    assert set(inner) == {"drift-trigger-op", "recsys-training"}
    passed = inner["recsys-training"]["inputs"]["parameters"]
    assert passed["trigger"]["taskOutputParameter"]["producerTask"] == "drift-trigger-op"
    for name in ("s3_endpoint_url", "feast_profile",
                 "lake_uri", "tracking_uri", "state_dir"):  # the retrain sees the same services
        assert passed[name]["componentInputParameter"] == f"pipelinechannel--{name}", name


@pytest.mark.slow
def test_drift_starts_retraining(tmp_path):
    end = pd.Timestamp.now(tz="UTC").floor("D") - pd.Timedelta(days=1)
    config = ShopConfig(events=15_000, seed=8, end=end.to_pydatetime())
    history = tmp_path / "history.jsonl"
    write_shop(generate_shop(config), "jsonl", history, config)
    settings = Settings(state_dir=tmp_path / "state", lake_uri=str(tmp_path / "lake"))
    common = dict(lake_uri=settings.lake, tracking_uri=settings.tracking_uri,
                  state_dir=str(settings.state_dir),
                  registered_model=settings.registered_model_name)
    run_training_locally(tmp_path / "kfp", source=str(history), **common)
    client = client_for(settings.tracking_uri)

    def versions():
        return len(client.search_model_versions(f"name='{settings.registered_model_name}'"))

    local.init(runner=local.SubprocessRunner(use_venv=False),
               pipeline_root=str(tmp_path / "kfp-monitoring"), raise_on_error=True)
    monitoring_pipeline(source=str(history), current_days=3.0, **common)
    assert versions() == 1  # no drift: no retraining

    day = generate_shop(ShopConfig(events=3_000, seed=9, days=1,
                                   end=(end + pd.Timedelta(days=1)).to_pydatetime()))
    day.events["price"] = day.events["price"] * 2.0
    day.events["utm_source"] = "tiktok"
    shifted = tmp_path / "shifted-day.jsonl"
    write_shop(day, "jsonl", shifted, config)
    lake = Lake(settings.lake)
    extract(ExtractConfig(source=str(shifted)), lake)
    validate_window(lake, ValidationConfig())
    monitoring_pipeline(source=str(shifted), current_days=1.0, **common)
    assert versions() == 2  # drift: the training pipeline ran and its gate registered v2
    tags = client.get_model_version(settings.registered_model_name, "1").tags
    assert "price" in tags["monitoring.top_drifted_columns"]
    retrained = client.get_model_version(settings.registered_model_name, "2").tags
    assert retrained["retrain.trigger"] == "drift"
    assert retrained["retrain.report_url"] == tags["monitoring.last_report"]
    assert retrained["retrain.monitoring_run_id"] == tags["monitoring.run_id"]
    assert "price" in retrained["retrain.top_drifted_columns"]
    assert retrained["gate.decision"] in {"approved", "refused"}
    first = client.get_model_version(settings.registered_model_name, "1").tags
    assert first["retrain.trigger"] == "schedule or manual"


def test_compile_writes_both_pipelines_and_the_schedules(tmp_path, capsys):
    from recsys.cli.main import main

    assert main(["pipeline", "compile", "--out", str(tmp_path)]) == 0
    schedules = yaml.safe_load((tmp_path / "recurring_runs.yaml").read_text())
    assert {s["name"] for s in schedules} == {"recsys-daily-monitoring",
                                              "recsys-daily-incremental-retrain",
                                              "recsys-weekly-full-retrain"}
    for schedule in schedules:
        assert (tmp_path / schedule["pipeline_file"]).exists()
        assert len(schedule["cron"].split()) == 6  # KFP cron: seconds first
    weekly = next(s for s in schedules if s["name"] == "recsys-weekly-full-retrain")
    assert weekly["cron"] == "0 0 3 * * 0"  # Sunday 03:00
    daily = next(s for s in schedules if s["name"] == "recsys-daily-incremental-retrain")
    assert (daily["parameters"]["search_trials"], weekly["parameters"]["search_trials"]) == (0, 8)
    assert weekly["parameters"]["lookback_days"] > daily["parameters"]["lookback_days"]
    assert all(s["max_concurrency"] == 1 for s in schedules)
