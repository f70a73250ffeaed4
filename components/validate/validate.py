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

from recsys.components.validate.rules import ValidationConfig, null_ratios, row_reasons
from recsys.core.columns import Columns
from recsys.core.errors import DataQualityError
from recsys.core.event_store import (
    CLEAN_ZONE,
    RAW_ZONE,
    append_partitioned,
    read_window,
)
from recsys.core.lake import Lake
from recsys.core.quarantine import quarantine_rows, reason_counts, write_quarantine
from recsys.core.schema import (
    EVENT_COLUMNS,
    EVENT_SCHEMA,
    RAW_EVENT_SCHEMA,
    SPARSE_COLUMNS,
    check_event_frame,
)

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


@dataclass
class ValidationResult:
    clean: pd.DataFrame
    quarantine: pd.DataFrame
    report: QualityReport


def validate_events(events: pd.DataFrame, config: ValidationConfig,
                    now: pd.Timestamp | None = None) -> ValidationResult:
    """Check every row; returns clean rows (canonical columns), quarantined rows and a report."""
    check_event_frame(events, "validate input")
    if C.parse_error not in events.columns:
        events = events.assign(**{C.parse_error: None})
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    reasons = row_reasons(events, config, now)
    bad = reasons.notna()
    clean = events.loc[~bad, list(EVENT_COLUMNS)].reset_index(drop=True)
    quarantined = quarantine_rows(events[bad], reasons[bad])
    ratios = null_ratios(events, list(EVENT_COLUMNS))
    warnings = sorted(c for c, r in ratios.items()
                      if r > config.null_warn_ratio and c not in SPARSE_COLUMNS)
    bad_ratio = float(bad.mean()) if len(events) else 0.0
    report = QualityReport(
        rows_in=len(events), rows_clean=len(clean), rows_quarantined=int(bad.sum()),
        bad_ratio=round(bad_ratio, 6), max_bad_ratio=config.max_bad_ratio,
        passed=bad_ratio <= config.max_bad_ratio and len(clean) > 0,
        reasons=reason_counts(reasons[bad]) if bad.any() else {},
        null_ratio=ratios, null_warnings=warnings,
        event_types={str(k): int(v) for k, v in clean[C.event_type].value_counts().items()},
        time_min=clean[C.timestamp].min() if len(clean) else None,
        time_max=clean[C.timestamp].max() if len(clean) else None,
        users=int(clean[C.user_id].nunique()), items=int(clean[C.item_id].nunique()),
    )
    for column in warnings:
        log.warning("validate: column %r is %.1f%% null (warn above %.0f%%)", column,
                    100 * ratios[column], 100 * config.null_warn_ratio)
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
    raw = read_window(lake, RAW_ZONE, RAW_EVENT_SCHEMA, start, end)
    result = validate_events(raw, config, now)
    raise_if_failed(result.report)
    publish_result(lake, result)
    log.info("validate: %d rows, %d clean, %d quarantined (%.2f%%)", result.report.rows_in,
             result.report.rows_clean, result.report.rows_quarantined,
             100 * result.report.bad_ratio)
    return result
