"""Data-quality rules: each returns a reason per failing row (None where the row passes)."""
from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from recsys.core.data.columns import EVENT_TYPES, ITEMLESS_EVENT_TYPES, Columns, EventType

C = Columns


class ValidationConfig(BaseModel):
    """Thresholds of the data-quality gate."""

    model_config = ConfigDict(extra="forbid")

    max_bad_ratio: float = Field(0.05, ge=0, le=1)
    """The step fails when more than this share of rows is quarantined."""
    null_warn_ratio: float = Field(0.10, ge=0, le=1)
    """Warn about a column whose null share is above this."""
    future_tolerance_seconds: int = Field(300, ge=0)
    """Clock skew allowed before a timestamp counts as in the future."""
    max_age_days: int = Field(3650, gt=0)
    """Events older than this are refused as absurdly old."""
    allowed_event_types: tuple[str, ...] = EVENT_TYPES
    """Event types accepted after readers mapped source names."""
    max_price: float = Field(1_000_000, gt=0)
    """Prices above this are refused as implausible."""
    rating_range: tuple[float, float] = (0.0, 10.0)
    """Inclusive range of valid ratings."""


def row_reasons(events: pd.DataFrame, config: ValidationConfig, now: pd.Timestamp) -> pd.Series:
    """One reason string per row ('; '-joined when several rules fail), None for good rows."""
    ts, price, rating = events[C.timestamp], events[C.price], events[C.rating]
    low, high = config.rating_range
    # (failed mask, reason text, or a function giving the text for the failed rows)
    checks: list[tuple[pd.Series, str | Callable[[pd.Series], pd.Series]]] = []
    for column in (C.event_id, C.user_id, C.item_id):
        text = events[column]
        missing = text.isna() | text.eq("")
        if column == C.item_id:  # a search names no item
            missing &= ~events[C.event_type].isin(ITEMLESS_EVENT_TYPES)
        checks.append((missing, f"missing {column}"))
    if C.query in events.columns:
        query = events[C.query]
        checks.append((events[C.event_type].eq(EventType.search.value)
                       & (query.isna() | query.eq("")), "search without a query"))
    checks += [
        (ts.isna(), "missing timestamp"),
        (~events[C.event_type].isin(config.allowed_event_types),
         lambda m: "unknown event_type: " + events.loc[m, C.event_type].astype(str)),
        (ts > now + pd.Timedelta(seconds=config.future_tolerance_seconds),
         lambda m: "future timestamp: " + ts[m].astype(str)),
        (ts < now - pd.Timedelta(days=config.max_age_days),
         lambda m: "timestamp too old: " + ts[m].astype(str)),
        ((price < 0) | (price > config.max_price),
         lambda m: "price out of range: " + price[m].astype(str)),
        (rating.notna() & ((rating < low) | (rating > high)),
         lambda m: "rating out of range: " + rating[m].astype(str)),
    ]
    if C.parse_error in events.columns:
        errors = events[C.parse_error]
        checks.append((errors.notna(), lambda m: "malformed: " + errors[m].astype(str)))
    return _join_reasons(events.index, checks)


def _join_reasons(index: pd.Index, checks) -> pd.Series:
    reasons = pd.Series(None, index=index, dtype=object)
    for failed, text in checks:
        failed = failed.fillna(False).astype(bool)
        if not failed.any():
            continue
        add = text(failed) if callable(text) else pd.Series(text, index=index[failed])
        current = reasons[failed]
        reasons[failed] = current.where(current.isna(), current + "; " + add).fillna(add)
    return reasons


def null_counts(events: pd.DataFrame, columns: list[str]) -> dict[str, int]:
    """Null (or blank) values per column: summed over batches, they give `null_ratios`."""
    counts = {}
    for column in columns:
        values = events[column]
        blank = values.isna()
        if values.dtype == object:
            blank |= values.eq("")
        counts[column] = int(blank.sum())
    return counts


def null_ratios(counts: dict[str, int], rows: int) -> dict[str, float]:
    """Share of null (or blank) values per column."""
    return {c: round(n / rows, 6) if rows else 0.0 for c, n in counts.items()}
