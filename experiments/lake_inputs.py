"""What an analysis reads from the lake: the experiment's exposures and the shop's events.

- Exposures: the serving request log's rows that name the experiment
  (`serving/requests/`, `recsys.core.online.request_log`), filtered by Arrow before pandas sees
  them, only the columns the analysis uses.
- Events: the raw zone the collector's lake sink writes (`raw/events/`), the experiment's
  window plus the attribution window after it, and the pre-period before it for CUPED;
  rows the collector could not parse are not outcomes, and an event id counts once.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recsys.core.data.columns import Columns
from recsys.core.data.event_store import RAW_ZONE, read_window
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from recsys.core.online.request_log import SCHEMA as REQUEST_LOG_SCHEMA
from recsys.core.online.request_log import ZONE as REQUEST_LOG_ZONE

C = Columns
HISTORY_LABEL = "history"
EXPOSURE_COLUMNS = [C.timestamp, C.user_id, "experiment", "variant", C.recommendation_id,
                    "item_ids"]
EVENT_COLUMNS = [C.event_id, C.user_id, C.item_id, C.event_type, C.timestamp, C.price,
                 C.recommendation_id, C.parse_error]


def read_exposures(lake: Lake, experiment: str | None, start: datetime,
                   end: datetime | None) -> pa.Table:
    """The experiment's exposures in [start, end), as Arrow (lists stay Arrow lists);
    `experiment` None: every list served in the window."""
    first_day = start.date().isoformat()
    last_day = end.date().isoformat() if end else "9999-12-31"
    keys = [k for k in lake.list(REQUEST_LOG_ZONE)
            if first_day <= _day(k) <= last_day]
    schema = pa.schema([REQUEST_LOG_SCHEMA.field(n) for n in EXPOSURE_COLUMNS])
    table = lake.read_tables(keys, schema=schema)
    time_type = schema.field(C.timestamp).type
    keep = pc.greater_equal(table[C.timestamp], pa.scalar(start, time_type))
    if experiment is not None:
        keep = pc.and_(keep, pc.equal(table["experiment"], experiment))
    if end is not None:
        keep = pc.and_(keep, pc.less(table[C.timestamp], pa.scalar(end, time_type)))
    return table.filter(keep).drop_columns(["experiment"])


def read_served(lake: Lake, start: datetime, end: datetime) -> pa.Table:
    """Every list served in [start, end) (in an experiment or not) as exposures of one
    variant, `history`: the traffic a test is planned from (`planning`)."""
    table = read_exposures(lake, None, start, end).drop_columns(["variant"])
    return table.append_column("variant", pa.array([HISTORY_LABEL] * table.num_rows,
                                                   pa.string()))


def read_events(lake: Lake, start: datetime, end: datetime | None) -> pd.DataFrame:
    schema = pa.schema([RAW_EVENT_SCHEMA.field(n) for n in EVENT_COLUMNS])
    frame = read_window(lake, RAW_ZONE, schema, start, end)
    frame = frame[frame[C.parse_error].isna()].drop(columns=C.parse_error)
    return frame.drop_duplicates(C.event_id).reset_index(drop=True)


def analysis_window(start: datetime, end: datetime | None, attribution_hours: float,
                    pre_days: float) -> tuple[datetime, datetime | None, datetime]:
    """(events from, events until, pre-period from)."""
    until = end + timedelta(hours=attribution_hours) if end else None
    return start, until, start - timedelta(days=pre_days)


def _day(key: str) -> str:
    for piece in key.split("/"):
        if piece.startswith("date="):
            return piece.split("=", 1)[1]
    return ""
