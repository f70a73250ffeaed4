"""The lake's size per zone reaches Prometheus through the Pushgateway; the monitoring
pipeline runs the retention as a step of its own with its settings from ConfigMaps."""
from datetime import date, timedelta

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from recsys.components.lake.metrics import JOB, push_lake_report
from recsys.core.data.retention import retain
from recsys.pipelines.lake_retention import RETENTION_CONFIG_MAP, RETENTION_KEYS
from recsys.pipelines.monitoring_pipeline import compile_pipeline
from recsys.pipelines.outcome_reporting import OUTCOME_CONFIG_MAP
from tests.conftest import free_port

TODAY = date(2026, 11, 10)



def a_report(lake, dry_run=False) -> dict:
    old = (TODAY - timedelta(days=9)).isoformat()
    lake.write_bytes(f"raw/events/event_date={old}/part-a.parquet", b"x" * 100)
    lake.write_bytes(f"raw/events/event_date={TODAY}/part-a.parquet", b"x" * 40)
    lake.write_bytes(f"quarantine/events/event_date={TODAY}/part-a.parquet", b"x" * 7)
    lake.write_bytes("processed/snapshot/matrix.npz", b"x" * 3)
    return retain(lake, {"raw": 3}, today=TODAY, dry_run=dry_run)


@pytest.mark.integration
def test_the_lake_size_per_zone_is_pushed(pushgateway, lake):
    assert push_lake_report(pushgateway, a_report(lake))
    found = {}
    text = requests.get(f"{pushgateway}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("recsys_lake_"):
                assert sample.labels["job"] == JOB
                found[(sample.name, sample.labels.get("zone", ""))] = sample.value
    assert found[("recsys_lake_size_bytes", "raw")] == 40  # after the deletion
    assert found[("recsys_lake_size_bytes", "quarantine")] == 7
    assert found[("recsys_lake_size_bytes", "other")] == 3
    assert found[("recsys_lake_objects", "raw")] == 1
    assert found[("recsys_lake_retention_deleted_partitions", "raw")] == 1
    assert found[("recsys_lake_retention_deleted_bytes", "raw")] == 100
    assert found[("recsys_lake_retention_deleted_partitions", "clean")] == 0
    assert found[("recsys_lake_retention_last_run_timestamp_seconds", "")] > 0


def test_nothing_is_pushed_unset_on_a_dry_run_or_unreachable(lake):
    assert push_lake_report(None, a_report(lake)) is False
    assert push_lake_report("http://127.0.0.1:1", a_report(lake, dry_run=True)) is False
    assert push_lake_report(f"http://127.0.0.1:{free_port()}", a_report(lake),
                            timeout=2) is False  # logged, never raised


def test_the_monitoring_pipeline_runs_retention_beside_the_check(tmp_path):
    spec, platform = yaml.safe_load_all(open(compile_pipeline(str(tmp_path / "m.yaml"))).read())
    handler = spec["root"]["dag"]["tasks"]["exit-handler-1"]["componentRef"]["name"]
    tasks = spec["components"][handler]["dag"]["tasks"]
    retention = tasks["lake-retention-op"]
    assert "dependentTasks" not in retention  # not held back by a failed drift check
    assert retention["cachingOptions"] == {}  # never cached (enableCache absent: false)
    passed = retention["inputs"]["parameters"]
    assert passed["lake_uri"]["componentInputParameter"] == "pipelinechannel--lake_uri"
    executor = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"][
        "exec-lake-retention-op"]
    names = {m["configMapName"] for m in executor["configMapAsEnv"]}
    assert names == {OUTCOME_CONFIG_MAP, RETENTION_CONFIG_MAP}
    envs = {k["envVar"]: k["configMapKey"] for m in executor["configMapAsEnv"]
            for k in m["keyToEnv"]}
    assert envs["RECSYS_PUSHGATEWAY_URL"] == "pushgateway_url"
    assert {v: k for k, v in RETENTION_KEYS.items()}.items() <= envs.items()
    assert envs["RECSYS_RETENTION_RAW_DAYS"] == "raw_days"
    assert all(m.get("optional") for m in executor["configMapAsEnv"])  # none: kept forever


def test_the_step_runs_under_kfp_local_with_its_policy_from_the_environment(
        lake, tmp_path, monkeypatch):
    import json

    from kfp import local

    from recsys.components.lake.component import lake_retention_op

    lake.write_bytes("raw/events/event_date=2020-01-01/part-a.parquet", b"x" * 10)
    lake.write_bytes("raw/events/event_date=2099-01-01/part-a.parquet", b"x" * 10)
    monkeypatch.setenv("RECSYS_RETENTION_RAW_DAYS", "3")
    monkeypatch.delenv("RECSYS_PUSHGATEWAY_URL", raising=False)
    local.init(runner=local.SubprocessRunner(use_venv=False),
               pipeline_root=str(tmp_path / "kfp"), raise_on_error=True)

    task = lake_retention_op(lake_uri=lake.uri, s3_endpoint_url="")

    report = json.loads(task.outputs["Output"])
    assert report["zones"]["raw"]["partitions"] == ["raw/events/event_date=2020-01-01"]
    assert lake.list("") == ["raw/events/event_date=2099-01-01/part-a.parquet"]
    assert task.outputs["metrics"].metadata["deleted_partitions_raw"] == 1.0
