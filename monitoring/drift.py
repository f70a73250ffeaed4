"""Declare the data-drift report from config, run it on two frames, summarise the result."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.report import Snapshot
from evidently.presets import DataDriftPreset

from recsys.core.data.columns import Columns
from recsys.monitoring.calibration import noise_floors
from recsys.monitoring.config import DriftConfig
from recsys.monitoring.frames import monitoring_frame, sample

log = logging.getLogger(__name__)
C = Columns


def declare_report(config: DriftConfig, thresholds: dict[str, float]) -> Report:
    """The report: one drift test per column, with its threshold."""
    return Report([DataDriftPreset(
        columns=list(thresholds), num_method="wasserstein", cat_method="jensenshannon",
        drift_share=config.drift_share, per_column_threshold=thresholds,
    )], include_tests=True)


def thresholds_for(config: DriftConfig, ref: pd.DataFrame, sessions: pd.Series | None,
                   current_rows: int, present: list[str]) -> tuple[dict, dict]:
    """Configured thresholds, raised to the sampling-noise floor of a window this small."""
    configured = {c: config.threshold(c) for c in present}
    if sessions is None or not config.calibrate:
        return configured, {}
    floors = noise_floors(ref[present], sessions, current_rows, set(config.numerical_columns),
                          config.seed)
    return {c: max(configured[c], floors[c]) for c in present}, floors


@dataclass
class DriftResult:
    summary: dict
    snapshot: Snapshot


def run_drift(reference: pd.DataFrame, current: pd.DataFrame, config: DriftConfig,
              context: dict | None = None) -> DriftResult:
    """Compare current events with reference events; both canonical event frames."""
    ref = sample(monitoring_frame(reference, config), config)
    cur = sample(monitoring_frame(current, config), config)
    sessions = reference.loc[ref.index, C.session_id].astype(str) \
        if C.session_id in reference.columns else None
    # a column that is empty on both sides carries no signal (e.g. no context in RetailRocket)
    present = [c for c in ref.columns
               if not (_empty(ref[c]) and _empty(cur[c]))]
    definition = DataDefinition(
        numerical_columns=[c for c in config.numerical_columns if c in present],
        categorical_columns=[c for c in config.categorical_columns if c in present])
    thresholds, floors = thresholds_for(config, ref, sessions, len(cur), present)
    snapshot = declare_report(config, thresholds).run(
        Dataset.from_pandas(cur[present], data_definition=definition),
        Dataset.from_pandas(ref[present], data_definition=definition))
    summary = summarise(snapshot.dict(), config)
    summary.update({"reference_rows": len(reference), "current_rows": len(current),
                    "noise_floors": floors,
                    "sampled_rows": {"reference": len(ref), "current": len(cur)},
                    **(context or {})})
    log.info("drift: %s (%d of %d columns drifted: %s)",
             "DETECTED" if summary["drift_detected"] else "none",
             summary["drifted_columns"], summary["columns_tested"],
             ", ".join(summary["top_drifted_columns"]) or "-")
    return DriftResult(summary, snapshot)


def summarise(report: dict, config: DriftConfig) -> dict:
    """drift_detected, share of drifted columns, per-column scores, top drifted columns."""
    columns = {}
    for metric in report["metrics"]:
        settings = metric.get("config", {})
        if not settings.get("type", "").endswith(":ValueDrift"):
            continue
        value, threshold = float(metric["value"]), float(settings["threshold"])
        columns[settings["column"]] = {"score": round(value, 6), "threshold": threshold,
                                       "method": settings.get("method"),
                                       "drifted": value >= threshold}
    drifted = sorted((c for c, r in columns.items() if r["drifted"]),
                     key=lambda c: -columns[c]["score"] / columns[c]["threshold"])
    share = len(drifted) / len(columns) if columns else 0.0
    return {"drift_detected": bool(columns) and share >= config.drift_share,
            "drift_share_threshold": config.drift_share, "drifted_share": round(share, 4),
            "drifted_columns": len(drifted), "columns_tested": len(columns),
            "top_drifted_columns": drifted[:5], "columns": columns}


def _empty(values: pd.Series) -> bool:
    return bool(values.isna().all() or (values.astype(str) == "(missing)").all())
