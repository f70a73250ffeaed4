"""The thin KFP wrappers of extract, validate and preprocess: compile and run under kfp.local."""
import json

import pandas as pd
import yaml
from kfp import compiler, dsl, local

from recsys.components.extract.component import extract_op
from recsys.components.preprocess.component import preprocess_op
from recsys.components.validate.component import validate_op
from recsys.core.settings import Settings
from tests.components.extract.test_extract import rich, write_jsonl


@dsl.pipeline(name="data-steps")
def data_steps(source: str, lake_uri: str):
    extracted = extract_op(source=source, lake_uri=lake_uri)
    validated = validate_op(events=extracted.outputs["events"], lake_uri=lake_uri,
                            max_bad_ratio=0.5)
    preprocess_op(clean=validated.outputs["clean"], holdout_days=1.0, lookback_days=30.0,
                  window_end="")


def test_compiles_with_every_step_in_the_project_image(tmp_path):
    path = tmp_path / "data.yaml"
    compiler.Compiler().compile(data_steps, str(path))
    spec = yaml.safe_load(path.read_text())
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"extract-op", "validate-op", "preprocess-op"}
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {Settings().image}


def test_runs_locally_end_to_end(tmp_path):
    now_ms = int(pd.Timestamp.now(tz="UTC").value // 10**6)
    records = [rich(f"e{i}", user=f"u{i % 5}", item=f"i{i % 7}", ts=now_ms - (60 - i) * 3_600_000)
               for i in range(60)] + [rich("bad", kind="teleport", ts=now_ms - 1000)]
    source = write_jsonl(tmp_path / "events.jsonl", records)
    local.init(runner=local.SubprocessRunner(use_venv=False),
               pipeline_root=str(tmp_path / "root"))
    lake = tmp_path / "lake"
    data_steps(source=str(source), lake_uri=str(lake))
    summaries = list((tmp_path / "root").rglob("processed/summary.json"))
    assert len(summaries) == 1
    summary = json.loads(summaries[0].read_text())
    assert summary["events_in"] == 60
    # events one hour apart, the last at -1h: the holdout [-25h, -1h] holds 25 of them
    assert summary["holdout_events"] == 25
    assert len(list((lake / "quarantine").rglob("*.parquet"))) == 1
    assert len(list((lake / "clean").rglob("*.parquet"))) >= 1
