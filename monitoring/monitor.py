"""Scheduled monitoring: the champion's training window against a recent window of the lake.

Each run writes report.html + summary.json to the lake under reports/drift/date=.../, logs
both to an MLflow run, tags the champion's version with the outcome, and adds the report to
the Evidently workspace that `recsys monitor ui` shows.
"""
from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

import mlflow
import pandas as pd

from recsys.core.data.columns import Columns
from recsys.core.data.event_store import CLEAN_ZONE, read_window
from recsys.core.data.feature_snapshots import read_latest
from recsys.core.data.lake import Lake
from recsys.core.data.schema import EVENT_SCHEMA
from recsys.core.errors import DataQualityError, NotFoundError
from recsys.core.lifecycle.registry import CHAMPION, MONITORED_AT_TAG, aliases
from recsys.core.lifecycle.tracking import client_for, ensure_experiment
from recsys.core.online.catalogue import Catalogue
from recsys.core.online.request_log import read_request_log
from recsys.core.settings import Settings
from recsys.monitoring.config import DriftConfig
from recsys.monitoring.dashboard import figures_snapshot
from recsys.monitoring.drift import run_drift
from recsys.monitoring.feature_drift import feature_drift
from recsys.monitoring.html_report import report_html
from recsys.monitoring.prediction_drift import run_prediction_drift
from recsys.monitoring.quality import served_quality
from recsys.monitoring.workspace import REPORTS_PREFIX, publish, run_stamp

log = logging.getLogger(__name__)
C = Columns
EXPERIMENT = "recsys-monitoring"


def champion_training_window(settings: Settings) -> dict:
    """Version, run and [start, end) of the data the current champion was trained on."""
    client = client_for(settings.tracking_uri)
    version = aliases(client, settings.registered_model_name).get(CHAMPION)
    if version is None:
        raise NotFoundError("no champion to monitor yet: run the training pipeline first")
    run_id = client.get_model_version(settings.registered_model_name, version).run_id
    if run_id is None:
        raise NotFoundError(f"champion v{version} records no training run")
    params = client.get_run(run_id).data.params
    start = params.get("data.train_start") or params.get("data.window_start")
    end = params.get("data.split_time")
    if not end:
        raise NotFoundError(f"champion v{version}'s run {run_id} has no data window logged")
    return {"version": version, "run_id": run_id,
            "start": pd.Timestamp(start) if start and start != "None" else None,
            "end": pd.Timestamp(end)}


def monitor(settings: Settings, config: DriftConfig, current_days: float = 1.0,
            current_end: pd.Timestamp | None = None) -> dict:
    lake = Lake(settings.lake, settings.s3_endpoint_url)
    window = champion_training_window(settings)
    reference = read_window(lake, CLEAN_ZONE, EVENT_SCHEMA, window["start"], window["end"])
    if current_end is None:
        latest = read_window(lake, CLEAN_ZONE, EVENT_SCHEMA,
                             pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=60))
        current_end = latest[C.timestamp].max() + pd.Timedelta(milliseconds=1) \
            if len(latest) else pd.Timestamp.now(tz="UTC")
    current_start = current_end - pd.Timedelta(days=current_days)
    current = read_window(lake, CLEAN_ZONE, EVENT_SCHEMA, current_start, current_end)
    if reference.empty or current.empty:
        raise DataQualityError(f"nothing to compare: {len(reference)} reference and "
                               f"{len(current)} current events")
    context = {"model_version": window["version"], "model_run_id": window["run_id"],
               "reference_window": [str(window["start"]), str(window["end"])],
               "current_window": [str(current_start), str(current_end)]}
    result = run_drift(reference, current, config, context)
    result.summary["prediction_drift"] = prediction_drift(settings, lake, current_days)
    result.summary["feature_drift"] = feature_drift(lake, window["end"])
    result.summary["quality"], quality_snapshot = served_list_quality(lake, current_days)
    stamp = pd.Timestamp.now(tz="UTC")
    prefix = f"{REPORTS_PREFIX}/date={stamp:%Y-%m-%d}/{stamp:%H%M%S}"
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "report.html"
        html.write_text(report_html(result.snapshot), encoding="utf-8")
        summary_text = json.dumps(result.summary, indent=2, default=str)
        lake.write_bytes(f"{prefix}/report.html", html.read_bytes())
        lake.write_bytes(f"{prefix}/summary.json", summary_text.encode())
        lake.write_bytes(f"{prefix}/snapshot.json", result.snapshot.dumps().encode())
        if quality_snapshot is not None:
            lake.write_bytes(f"{prefix}/quality_snapshot.json",
                             quality_snapshot.dumps().encode())
        run_id = _log_to_mlflow(settings, result.summary, html)
    result.summary.update({"report_url": lake.url(f"{prefix}/report.html"),
                           "monitoring_run_id": run_id})
    _tag_champion(settings, window["version"], result.summary)
    workspace = settings.state_dir / "evidently"
    publish(result.snapshot, workspace, lake_key=f"{prefix}/snapshot.json",
            name=f"drift {stamp:%Y-%m-%d %H:%M} vs champion v{window['version']}")
    if quality_snapshot is not None:
        publish(quality_snapshot, workspace, lake_key=f"{prefix}/quality_snapshot.json",
                name=f"served quality {stamp:%Y-%m-%d %H:%M}")
    # the figures the project's dashboard charts (monitoring/dashboard.py)
    figures = figures_snapshot(result.summary, run_stamp(prefix + "/").to_pydatetime())
    if figures is not None:
        publish(figures, workspace, lake_key=f"{prefix}/summary.json",
                name=f"figures {stamp:%Y-%m-%d %H:%M}")
    return result.summary


def served_list_quality(lake: Lake, current_days: float,
                        horizon: pd.Timedelta = pd.Timedelta(days=1)):
    """Evidently recsys metrics of the lists served in the last `current_days`, judged by the
    interactions that followed them (see monitoring/quality.py)."""
    now = pd.Timestamp.now(tz="UTC")
    log_frame = read_request_log(lake, now - pd.Timedelta(days=current_days) - horizon, now)
    if log_frame.empty:
        return {"status": "not computed: no served lists in the request log",
                "judged_lists": 0}, None
    events = read_window(lake, CLEAN_ZONE, EVENT_SCHEMA, log_frame["timestamp"].min(), None)
    return served_quality(log_frame, events, horizon=horizon)


def prediction_drift(settings: Settings, lake: Lake, current_days: float,
                     reference_days: float = 7.0) -> dict:
    """Served lists of the last `current_days` against the `reference_days` before them
    (wall-clock time: the request log is written as requests arrive)."""
    now = pd.Timestamp.now(tz="UTC")
    split = now - pd.Timedelta(days=current_days)
    reference = read_request_log(lake, split - pd.Timedelta(days=reference_days), split)
    current = read_request_log(lake, split, now)
    if reference.empty or current.empty:
        return {"status": f"not computed: {len(reference)} reference and {len(current)} "
                          "current served lists in the request log"}
    catalogue = Catalogue.from_lake(lake)
    prices = _latest_prices(lake)
    return {"status": "computed", **run_prediction_drift(reference, current,
                                                         catalogue.categories, prices)}


def _latest_prices(lake: Lake) -> dict:
    items = read_latest(lake, "item_stats", columns=[C.item_id, "avg_price"])
    return {} if items is None else dict(zip(items[C.item_id].astype(str), items["avg_price"]))


def _log_to_mlflow(settings: Settings, summary: dict, html: Path) -> str:
    client_for(settings.tracking_uri)
    experiment_id = ensure_experiment(settings.tracking_uri, EXPERIMENT)
    with mlflow.start_run(experiment_id=experiment_id, run_name="data drift") as run:
        mlflow.set_tags({"recsys.step": "monitor", "model_version": summary["model_version"],
                         "drift_detected": str(summary["drift_detected"])})
        mlflow.log_metrics({"drifted_share": summary["drifted_share"],
                            "drifted_columns": summary["drifted_columns"]})
        predictions = summary.get("prediction_drift", {})
        if predictions.get("status") == "computed":
            mlflow.log_metrics({
                "prediction_drifted_share": predictions["drifted_share"],
                "served_fallback_ratio": predictions["current"]["fallback_ratio"],
                "served_coverage": predictions["current"]["coverage"]})
        quality = summary.get("quality", {})
        if quality.get("status") == "computed":
            mlflow.log_metrics({f"served_{key}": value for key, value in quality.items()
                                if key.endswith(f"_at_{quality['k']}")})
        mlflow.log_artifact(str(html), "drift")
        mlflow.log_dict(summary, "drift/summary.json")
        return run.info.run_id


def _tag_champion(settings: Settings, version: str, summary: dict) -> None:
    client = client_for(settings.tracking_uri)
    name = settings.registered_model_name
    for key, value in {"monitoring.drift_detected": str(summary["drift_detected"]),
                       "monitoring.last_report": summary["report_url"],
                       "monitoring.run_id": summary["monitoring_run_id"],
                       "monitoring.top_drifted_columns": ",".join(
                           summary["top_drifted_columns"]),
                       "monitoring.prediction_drift_detected": str(
                           summary["prediction_drift"].get("drift_detected")),
                       MONITORED_AT_TAG: str(int(time.time()))}.items():
        client.set_model_version_tag(name, version, key, value)
