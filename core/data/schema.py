"""The canonical event schema: one typed table layout every step reads and writes."""
from __future__ import annotations

import logging

import pandas as pd
import pyarrow as pa

from recsys.core.data.columns import REQUIRED_COLUMNS, Columns
from recsys.core.errors import SchemaError, missing_columns_error

log = logging.getLogger(__name__)

C = Columns

TIMESTAMP_TYPE = pa.timestamp("ms", tz="UTC")

EVENT_FIELDS: tuple[pa.Field, ...] = (
    pa.field(C.event_id, pa.string()),
    pa.field(C.user_id, pa.string()),
    pa.field(C.item_id, pa.string()),
    pa.field(C.session_id, pa.string()),
    pa.field(C.event_type, pa.string()),
    pa.field(C.timestamp, TIMESTAMP_TYPE),
    pa.field(C.price, pa.float64()),
    pa.field(C.category, pa.string()),
    pa.field(C.brand, pa.string()),
    pa.field(C.rating, pa.float64()),
    pa.field(C.device_type, pa.string()),
    pa.field(C.referrer, pa.string()),
    pa.field(C.utm_source, pa.string()),
    pa.field(C.utm_campaign, pa.string()),
    pa.field(C.segment, pa.string()),
    pa.field(C.login_status, pa.string()),
    pa.field(C.page_url, pa.string()),
    # schema version 2: the whole rich JSON event
    pa.field(C.weather_status, pa.string()),
    pa.field(C.temperature, pa.float64()),
    pa.field(C.time_of_day, pa.string()),
    pa.field(C.day_of_week, pa.string()),
    pa.field(C.query, pa.string()),
    pa.field(C.source, pa.string()),
    pa.field(C.recommendation_id, pa.string()),
    pa.field(C.extra, pa.string()),
)
SPARSE_COLUMNS: frozenset[str] = frozenset({
    C.weather_status, C.temperature, C.time_of_day, C.day_of_week, C.query, C.source,
    C.recommendation_id, C.extra})
"""Columns only some events or sources fill (a search's query, a click's list): mostly null
is normal for them, so no null-share warning."""
SCHEMA_VERSION = 2
"""Version of the canonical event schema, written into every events file's Parquet metadata
(`recsys.schema_version`). Versions only add nullable columns at the end: files of version 1
(no rich-event context columns, no `extra`) read as version 2 with those columns null."""
SCHEMA_VERSION_KEY = b"recsys.schema_version"
EVENT_SCHEMA = pa.schema(EVENT_FIELDS, metadata={SCHEMA_VERSION_KEY: str(SCHEMA_VERSION).encode()})
EVENT_COLUMNS: tuple[str, ...] = tuple(f.name for f in EVENT_FIELDS)

# The raw zone also carries what a reader could not parse, for validate to quarantine.
RAW_EVENT_SCHEMA = EVENT_SCHEMA.append(pa.field(C.parse_error, pa.string()))
RAW_EVENT_COLUMNS: tuple[str, ...] = tuple(RAW_EVENT_SCHEMA.names)

NUMERIC_COLUMNS = (C.price, C.rating, C.temperature)
MAX_EXTRA_BYTES = 4096
"""The `extra` column (fields of an event the schema has no column for, as JSON) holds at
most this much; a bigger one is refused with its reason, never cut."""


def empty_events(with_parse_error: bool = True) -> pd.DataFrame:
    """An empty frame with the canonical columns and dtypes."""
    schema = RAW_EVENT_SCHEMA if with_parse_error else EVENT_SCHEMA
    return schema.empty_table().to_pandas()


def conform_events(frame: pd.DataFrame, where: str, with_parse_error: bool = True) -> pd.DataFrame:
    """Return `frame` with exactly the canonical columns and dtypes.

    Missing optional columns are added as nulls; missing required columns raise a
    SchemaError naming them. Convertible dtypes (numbers as ids, strings as prices)
    are converted with a warning; values that do not convert become null and are
    recorded in `parse_error` so validate can quarantine them.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise missing_columns_error(where, missing, frame.columns)
    columns = RAW_EVENT_COLUMNS if with_parse_error else EVENT_COLUMNS
    out = pd.DataFrame(index=frame.index)
    problems = pd.Series(pd.NA, index=frame.index, dtype=object)
    for name in columns:
        if name not in frame.columns:
            out[name] = _missing_column(name, frame.index)
            continue
        values = frame[name]
        if name == C.timestamp:
            out[name] = _to_utc_timestamp(values, where)
        elif name in NUMERIC_COLUMNS:
            out[name], bad = _to_float(values, where, name)
            problems = _note(problems, bad, f"{name} not a number")
        else:
            out[name] = _to_string(values)
    if with_parse_error:
        prior = out[C.parse_error]
        combined = prior.where(prior.notna(), problems)
        both = prior.notna() & problems.notna()
        combined[both] = prior[both] + "; " + problems[both]
        out[C.parse_error] = combined.astype(object)
    out.index = pd.RangeIndex(len(out))  # a fresh frame: re-labelled, not copied
    return out


def _missing_column(name: str, index: pd.Index) -> pd.Series:
    if name == C.timestamp:
        return pd.Series(pd.NaT, index=index, dtype="datetime64[ms, UTC]")
    if name in NUMERIC_COLUMNS:
        return pd.Series(float("nan"), index=index, dtype="float64")
    return pd.Series(None, index=index, dtype=object)


def _note(problems: pd.Series, bad: pd.Series, text: str) -> pd.Series:
    if not bad.any():
        return problems
    add = problems.copy()
    fresh = bad & problems.isna()
    add[fresh] = text
    add[bad & ~fresh] = add[bad & ~fresh] + "; " + text
    return add


def _to_utc_timestamp(values: pd.Series, where: str) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype("datetime64[ms, UTC]")
    if pd.api.types.is_datetime64_dtype(values):
        return values.dt.tz_localize("UTC").astype("datetime64[ms, UTC]")
    log.warning("%s: column %r is %s, converting to UTC timestamps", where, C.timestamp,
                values.dtype)
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_datetime(values, unit="ms", utc=True, errors="coerce").astype(
            "datetime64[ms, UTC]"
        )
    return pd.to_datetime(values, utc=True, errors="coerce", format="mixed").astype(
        "datetime64[ms, UTC]"
    )


def _to_float(values: pd.Series, where: str, name: str) -> tuple[pd.Series, pd.Series]:
    if pd.api.types.is_float_dtype(values):
        return values.astype("float64"), pd.Series(False, index=values.index)
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64"), pd.Series(False, index=values.index)
    converted = pd.to_numeric(values, errors="coerce").astype("float64")
    present = values.notna() & (values.astype(str).str.strip() != "")
    bad = present & converted.isna()
    if bad.any():
        log.warning("%s: %d value(s) of %r are not numbers", where, int(bad.sum()), name)
    return converted, bad


def _to_string(values: pd.Series) -> pd.Series:
    if values.dtype == object:
        if pd.api.types.infer_dtype(values, skipna=True) == "string":  # one C pass
            if not values.isna().any():
                return values
            return values.where(values.ne(""), None)  # as below: "" is no value
        # ints or floats from a CSV reader: format 123.0 as "123", keep nulls null
        return values.map(_scalar_to_str, na_action="ignore").astype(object)
    if pd.api.types.is_integer_dtype(values):
        return values.astype("Int64").astype(str).where(values.notna(), None).astype(object)
    if pd.api.types.is_float_dtype(values):
        return values.map(_scalar_to_str, na_action="ignore").astype(object)
    return values.astype(object).where(values.notna(), None)


def _scalar_to_str(value: object) -> str | None:
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value)
    return text if text != "" else None


def check_event_frame(frame: pd.DataFrame, where: str) -> None:
    """Raise a SchemaError naming every column whose dtype is not canonical."""
    missing = [c for c in EVENT_COLUMNS if c not in frame.columns]
    if missing:
        raise missing_columns_error(where, missing, frame.columns)
    wrong = []
    for name in EVENT_COLUMNS:
        dtype = frame[name].dtype
        if name == C.timestamp:
            ok = isinstance(dtype, pd.DatetimeTZDtype)
        elif name in NUMERIC_COLUMNS:
            ok = pd.api.types.is_float_dtype(dtype)
        else:
            ok = pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)
        if not ok:
            wrong.append(f"{name}: {dtype}")
    if wrong:
        raise SchemaError(f"{where}: wrong dtype for column(s) {wrong}")

