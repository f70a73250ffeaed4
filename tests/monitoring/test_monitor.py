"""Scheduled monitoring after a real pipeline run: reference = the champion's training data."""
import json

import pandas as pd
import pytest

from recsys.core.data.synthetic.config import ShopConfig
from recsys.core.data.synthetic.generate import generate_shop, write_shop
from recsys.core.lifecycle.tracking import client_for
from recsys.core.settings import Settings
from recsys.monitoring.config import DriftConfig
from recsys.monitoring.monitor import monitor
from recsys.pipelines.local_runner import run_training_locally


@pytest.mark.integration
def test_monitor_writes_reports_everywhere_and_tags_the_champion(tmp_path):
    end = pd.Timestamp.now(tz="UTC").floor("D")
    config = ShopConfig(events=15_000, seed=4, end=end.to_pydatetime())
    source = tmp_path / "shop.jsonl"
    shop = generate_shop(config)
    write_shop(shop, "jsonl", source, config)
    settings = Settings(state_dir=tmp_path / "state", lake_uri=str(tmp_path / "lake"))
    run_training_locally(tmp_path / "kfp", source=str(source), lake_uri=settings.lake,
                         tracking_uri=settings.tracking_uri, state_dir=str(settings.state_dir),
                         registered_model=settings.registered_model_name)
    # served lists: a stable week, then a day answered mostly by the fallback
    import numpy as np
    import pyarrow as pa

    from recsys.core.data.lake import Lake
    from recsys.core.online.request_log import SCHEMA

    items = pd.read_parquet(next((tmp_path / "lake" / "features" / "item_stats").glob("*")))
    ids = items["item_id"].astype(str).to_numpy()
    rng = np.random.default_rng(0)
    now = pd.Timestamp.now(tz="UTC")

    def served(start_days_ago, fallback_share, n=300):
        fallback = rng.random(n) < fallback_share
        return pd.DataFrame({
            "timestamp": [now - pd.Timedelta(days=start_days_ago) + pd.Timedelta(minutes=i)
                          for i in range(n)],
            "endpoint": "recommend", "user_id": "u", "model_version": "1",
            "path": np.where(fallback, "popularity", "model"), "fallback": fallback,
            "cached": False, "k": 10,
            "item_ids": [list(ids[:10]) if f else list(rng.choice(ids, 10)) for f in fallback],
            "scores": [list(np.linspace(1, 0.1, 10))] * n,
        }).astype({"timestamp": "datetime64[ms, UTC]"})

    lake = Lake(settings.lake)
    # lists served to 20 real users just before their latest events: the quality part
    # judges them by what the users did next
    recent = shop.events[shop.events["timestamp"] >= end - pd.Timedelta(days=1)]
    first = recent.sort_values("timestamp").drop_duplicates("user_id").head(20)
    later_items = recent.groupby("user_id")["item_id"].agg(lambda s: list(dict.fromkeys(s)))
    judged = pd.DataFrame({
        "timestamp": first["timestamp"].to_numpy() - pd.Timedelta(minutes=1),
        "endpoint": "recommend", "user_id": first["user_id"].astype(str).to_numpy(),
        "model_version": "1", "path": "model", "fallback": False, "cached": False, "k": 10,
        "item_ids": [([str(i) for i in later_items[u][:2]] + list(ids))[:10]
                     for u in first["user_id"]],
        "scores": [list(np.linspace(1, 0.1, 10))] * len(first),
    }).astype({"timestamp": "datetime64[ms, UTC]"})
    # written as a release before experiments did (no experiment columns): read as nulls
    before_experiments = pa.schema([field for field in SCHEMA if field.name not in
                                    ("experiment", "variant", "recommendation_id")])
    for name, frame in (("ref", served(5, 0.1)), ("cur", served(1, 0.8)),
                        ("judged", judged)):
        lake.write_table(f"serving/requests/date=x/{name}.parquet",
                         pa.Table.from_pandas(frame, schema=before_experiments,
                                              preserve_index=False))
    summary = monitor(settings, DriftConfig(), current_days=2)
    # the features step wrote user/item stats as of the split and as of the window end
    for table in ("user_stats", "item_stats"):
        assert summary["feature_drift"][table]["status"] == "computed"
        assert summary["feature_drift"][table]["columns_tested"] >= 8
    predictions = summary["prediction_drift"]
    assert predictions["status"] == "computed" and predictions["drift_detected"] is True
    assert predictions["columns"]["path"]["drifted"]
    assert predictions["current"]["fallback_ratio"] > predictions["reference"]["fallback_ratio"]

    quality = summary["quality"]
    assert quality["status"] == "computed" and quality["judged_lists"] == 20
    assert quality["hit_rate_at_10"] == 1.0  # every list holds an item the user then touched
    assert 0.1 <= quality["precision_at_10"] <= 1.0

    assert summary["drift_detected"] is False  # the same shop, a later window
    assert summary["model_version"] == "1"
    reference_end = pd.Timestamp(summary["reference_window"][1])
    assert reference_end == end - pd.Timedelta(days=7) - pd.Timedelta(milliseconds=1) or \
        reference_end < pd.Timestamp(summary["current_window"][0])
    reports = list((tmp_path / "lake" / "reports" / "drift").rglob("summary.json"))
    assert len(reports) == 1
    assert json.loads(reports[0].read_text())["columns_tested"] == summary["columns_tested"]
    client = client_for(settings.tracking_uri)
    tags = client.get_model_version(settings.registered_model_name, "1").tags
    assert tags["monitoring.drift_detected"] == "False"
    assert tags["monitoring.last_report"].endswith("report.html")
    run = client.get_run(summary["monitoring_run_id"])
    assert run.data.metrics["drifted_share"] == summary["drifted_share"]
    assert run.data.metrics["served_ndcg_at_10"] == quality["ndcg_at_10"]
    assert (settings.state_dir / "evidently").exists()

    # the lake holds the Evidently snapshots: a workspace that died with its pod comes back
    from evidently.ui.workspace import Workspace

    from recsys.monitoring.workspace import DEFAULT_PROJECT, sync_from_lake

    folder = reports[0].parent
    assert {p.name for p in folder.iterdir()} >= {"report.html", "summary.json",
                                                  "snapshot.json", "quality_snapshot.json"}
    fresh = tmp_path / "pod-workspace"
    assert sync_from_lake(lake, fresh) == 3  # drift, served quality, figures
    assert sync_from_lake(lake, fresh) == 0  # nothing added twice
    workspace = Workspace(str(fresh))
    project = workspace.search_project(DEFAULT_PROJECT)[0]
    assert len(workspace.list_runs(project.id)) == 3
