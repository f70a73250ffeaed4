"""validate: split a batch into clean rows and quarantined rows with reasons, and report.

Fails (DataQualityError) when the bad-row share passes the threshold; then nothing is
written, so the lake stays as it was.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from pydantic import BaseModel

from recsys.components.validate.rules import (
    ValidationConfig,
    null_counts,
    null_ratios,
    row_reasons,
)
from recsys.core.data.columns import Columns
from recsys.core.data.event_store import (
    CLEAN_ZONE,
    RAW_ZONE,
    append_partitioned,
    read_window,
)
from recsys.core.data.lake import Lake
from recsys.core.data.quarantine import quarantine_rows, reason_counts, write_quarantine
from recsys.core.data.schema import (
    EVENT_COLUMNS,
    EVENT_SCHEMA,
    RAW_EVENT_SCHEMA,
    SPARSE_COLUMNS,
    check_event_frame,
)
from recsys.core.errors import DataQualityError

log = logging.getLogger(__name__)
C = Columns


class QualityReport(BaseModel):
    """The data-quality report of one batch."""

    rows_in: int
    rows_clean: int
    rows_quarantined: int
    bad_ratio: float
    max_bad_ratio: float
    passed: bool
    reasons: dict[str, int]
    null_ratio: dict[str, float]
    null_warnings: list[str]
    event_types: dict[str, int]
    time_min: datetime | None
    time_max: datetime | None
    users: int
    items: int
    corrupt_files: list[str] = []
    """Lake files of the window that could not be decoded, moved to the corrupt zone."""


@dataclass
class ValidationResult:
    clean: pd.DataFrame
    quarantine: pd.DataFrame
    report: QualityReport


def judge(events: pd.DataFrame, config: ValidationConfig, now: pd.Timestamp) -> pd.DataFrame:
    """The rows with their `reason` (None for a clean row): row by row, so any cut of a
    batch gives the same verdicts (the spark engine judges each batch in its own task)."""
    if C.parse_error not in events.columns:
        events = events.assign(**{C.parse_error: None})
    return events.assign(**{C.reason: row_reasons(events, config, now)})


def batch_tally(judged: pd.DataFrame) -> dict:
    """What the report counts of a judged batch; tallies of batches add up (`merge_tallies`)."""
    bad = judged[C.reason].notna()
    clean = judged.loc[~bad]
    times = clean[C.timestamp].dropna()
    return {
        "rows": len(judged), "bad": int(bad.sum()),
        "reasons": reason_counts(judged.loc[bad, C.reason]) if bad.any() else {},
        "nulls": null_counts(judged, list(EVENT_COLUMNS)),
        "event_types": {str(k): int(v) for k, v in clean[C.event_type].value_counts().items()},
        "time_min": int(times.min().value // 1_000_000) if len(times) else None,
        "time_max": int(times.max().value // 1_000_000) if len(times) else None,
    }


def merge_tallies(tallies: list[dict]) -> dict:
    """The tally of the union of the batches."""
    total: dict = {"rows": 0, "bad": 0, "reasons": {}, "nulls": {}, "event_types": {},
                   "time_min": None, "time_max": None}
    for tally in tallies:
        total["rows"] += tally["rows"]
        total["bad"] += tally["bad"]
        for name in ("reasons", "nulls", "event_types"):
            for key, count in tally[name].items():
                total[name][key] = total[name].get(key, 0) + count
        for name, pick in (("time_min", min), ("time_max", max)):
            if tally[name] is not None:
                total[name] = tally[name] if total[name] is None else pick(total[name],
                                                                           tally[name])
    total["nulls"] = total["nulls"] or {c: 0 for c in EVENT_COLUMNS}
    return total


def quality_report(tally: dict, config: ValidationConfig, users: int,
                   items: int) -> QualityReport:
    """The batch's report from its tally and its clean rows' distinct users and items."""
    rows, bad = tally["rows"], tally["bad"]
    ratios = null_ratios(tally["nulls"], rows)
    warnings = sorted(c for c, r in ratios.items()
                      if r > config.null_warn_ratio and c not in SPARSE_COLUMNS)
    bad_ratio = bad / rows if rows else 0.0
    for column in warnings:
        log.warning("validate: column %r is %.1f%% null (warn above %.0f%%)", column,
                    100 * ratios[column], 100 * config.null_warn_ratio)

    def moment(ms: int | None) -> datetime | None:
        return pd.Timestamp(ms, unit="ms", tz="UTC").to_pydatetime() if ms is not None else None

    return QualityReport(
        rows_in=rows, rows_clean=rows - bad, rows_quarantined=bad,
        bad_ratio=round(bad_ratio, 6), max_bad_ratio=config.max_bad_ratio,
        passed=bad_ratio <= config.max_bad_ratio and rows - bad > 0,
        reasons=dict(sorted(tally["reasons"].items())), null_ratio=ratios,
        null_warnings=warnings,
        event_types=dict(sorted(tally["event_types"].items(), key=lambda kv: (-kv[1], kv[0]))),
        time_min=moment(tally["time_min"]), time_max=moment(tally["time_max"]),
        users=users, items=items)


def validate_events(events: pd.DataFrame, config: ValidationConfig,
                    now: pd.Timestamp | None = None) -> ValidationResult:
    """Check every row; returns clean rows (canonical columns), quarantined rows and a report."""
    check_event_frame(events, "validate input")
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    judged = judge(events, config, now)
    bad = judged[C.reason].notna()
    clean = judged.loc[~bad, list(EVENT_COLUMNS)].reset_index(drop=True)
    quarantined = quarantine_rows(judged[bad], judged.loc[bad, C.reason])
    report = quality_report(batch_tally(judged), config,
                            users=int(clean[C.user_id].nunique()),
                            items=int(clean[C.item_id].nunique()))
    return ValidationResult(clean=clean, quarantine=quarantined, report=report)


def raise_if_failed(report: QualityReport) -> None:
    """Raise a DataQualityError naming the counts when the batch failed its gate."""
    if report.passed:
        return
    if report.rows_clean == 0:
        raise DataQualityError(f"validate: no clean rows among {report.rows_in} "
                               f"(reasons: {report.reasons})")
    raise DataQualityError(
        f"validate: {report.rows_quarantined} of {report.rows_in} rows are bad "
        f"({100 * report.bad_ratio:.2f}% > allowed {100 * report.max_bad_ratio:.2f}%); "
        f"reasons: {report.reasons}"
    )


def publish_result(lake: Lake, result: ValidationResult) -> None:
    """Append a passed batch's clean rows and its quarantine to the lake (idempotent)."""
    append_partitioned(lake, CLEAN_ZONE, result.clean, C.event_id, EVENT_SCHEMA)
    write_quarantine(lake, result.quarantine)


def validate_window(lake: Lake, config: ValidationConfig, start: datetime | None = None,
                    end: datetime | None = None,
                    now: pd.Timestamp | None = None) -> ValidationResult:
    """Validate the raw zone's window; on success append clean rows and quarantine to the lake."""
    set_aside_before = len(lake.set_aside_keys)
    raw = read_window(lake, RAW_ZONE, RAW_EVENT_SCHEMA, start, end)
    result = validate_events(raw, config, now)
    result.report.corrupt_files = lake.set_aside_keys[set_aside_before:]
    if result.report.corrupt_files:
        log.warning("validate: %d corrupt file(s) moved to the lake's corrupt zone, the rest "
                    "of their partitions validated: %s", len(result.report.corrupt_files),
                    ", ".join(result.report.corrupt_files))
    raise_if_failed(result.report)
    publish_result(lake, result)
    log.info("validate: %d rows, %d clean, %d quarantined (%.2f%%)", result.report.rows_in,
             result.report.rows_clean, result.report.rows_quarantined,
             100 * result.report.bad_ratio)
    return result
