"""Replay after a fix: the quarantine zone's rows judged again with today's rules; those that
pass move to the raw zone.

The quarantine zone (`quarantine/events/`) holds three kinds of rows, each re-read the way
the path that refused it reads today:
- a dead letter of the collector (`reason` = `collector: ...`, `raw` = the refused event as
  JSON; `streaming/quarantine_sink.py`): the collector's checks (`validate_events`), with
  its time bounds and user binding taken at the time the collector received it;
- a line no reader could read (`raw` = its text): a JSON object line is read again by the
  JSON Lines reader; other lines (a CSV row without its header, withheld text) cannot be
  read on their own and stay;
- a row of an event (extract's rows without a time, validate's refused rows): its columns as
  stored.
Each candidate event then goes through validate's rules (`judge`). Those that pass are
appended to the raw zone (idempotent by event_id: one already there counts as
`already_present`), and only then recorded in `quarantine/replayed/` (keyed by the quarantine
row's id, in the same date partition as the row, so the quarantine's retention takes both).
A recorded row is never examined again; a replay stopped between the two writes examines
the row again and finds its event already in the raw zone: nothing is doubled. One replay
runs at a time per lake (`lock.py`: a second fails at once naming the holder), since two
running at once could both find an event missing from the raw zone and both write it. The rows
that still fail stay as they were, with the reason they were quarantined for; the summary
counts them by today's reason. The quarantine rows themselves are never rewritten.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel

from recsys.components.replay.lock import replay_lock
from recsys.components.validate.rules import ValidationConfig
from recsys.components.validate.validate import judge
from recsys.core.data.columns import Columns
from recsys.core.data.event_store import (
    QUARANTINE_SCHEMA,
    QUARANTINE_ZONE,
    RAW_ZONE,
    append_partitioned,
    event_dates,
    parse_moment,
    partition_key,
    read_event_files,
    window_keys,
)
from recsys.core.data.lake import Lake
from recsys.core.data.readers import jsonl
from recsys.core.data.schema import (
    RAW_EVENT_COLUMNS,
    RAW_EVENT_SCHEMA,
    TIMESTAMP_TYPE,
    conform_events,
)
from recsys.core.errors import ConfigError, CorruptFileError
from recsys.streaming.events import TimeBounds, validate_events
from recsys.streaming.lake_sink import rows_to_frame
from recsys.streaming.quarantine_sink import REASON_PREFIX
from recsys.streaming.user_binding import NO_BINDING, UserBinding

log = logging.getLogger(__name__)
C = Columns
REPLAYED_ZONE = "quarantine/replayed"
REPLAYED_AT = "replayed_at"
REPLAYED_SCHEMA = pa.schema([
    pa.field(C.quarantine_id, pa.string()),
    pa.field(C.timestamp, TIMESTAMP_TYPE),
    pa.field(C.event_id, pa.string()),
    pa.field(REPLAYED_AT, TIMESTAMP_TYPE),
])
"""The record of replayed rows: which quarantine row, when; `timestamp` is the quarantine
row's (its date partition)."""
MAX_REASON_FILTER = 256
DEAD_LETTER = f"{REASON_PREFIX}:"
UNREADABLE_ALONE = "malformed row"
"""A CSV reader's refusal: the row is only readable with its file's header."""


@dataclass
class ReplayRules:
    """Today's rules: validate's configuration and the collector's user binding."""

    validation: ValidationConfig = field(default_factory=ValidationConfig)
    binding: UserBinding = NO_BINDING
    now: pd.Timestamp | None = None
    """validate's "now" (future and too old timestamps); default the replay's start."""


class ReplaySummary(BaseModel):
    """What a replay examined, moved and left (or with dry_run: would have)."""

    lake: str
    dry_run: bool
    reasons: list[str]
    since: datetime | None
    examined: int
    """Quarantine rows matching the filters and not replayed before."""
    replayed: int
    """Rows that pass today's rules: their events are in the raw zone now (written or
    already present) and the rows are recorded as replayed."""
    written: int
    """Events new to the raw zone."""
    already_present: int
    """Replayed rows whose event_id the raw zone already held (or another replayed row
    of this run carried)."""
    still_quarantined: dict[str, int]
    """Rows that still fail, by today's reason code (text before the first ':'; a dead
    letter's `collector: <field>`); they stay in quarantine."""
    previously_replayed: int
    """Rows matching the filters left out because an earlier replay recorded them."""
    corrupt_files: list[str] = []
    """Quarantine or raw files that could not be decoded (set aside to corrupt/; with
    dry_run only skipped)."""


def parse_reason(text: str) -> str:
    """A `--reason` filter: the start of a reason (or of one of its `; ` parts), compared
    without case: `collector`, `collector: event_type`, `price out of range`."""
    wanted = str(text).strip()
    if not wanted:
        raise ConfigError("--reason needs the start of a reason, e.g. 'collector' or "
                          "'price out of range'")
    if len(wanted) > MAX_REASON_FILTER:
        raise ConfigError(f"--reason is {len(wanted)} characters; at most "
                          f"{MAX_REASON_FILTER}")
    if any(ord(char) < 32 or ord(char) == 127 for char in wanted):
        raise ConfigError("--reason holds a control character")
    return wanted


def parse_since(text: str) -> datetime:
    """A `--since` bound: ISO date or datetime (UTC unless it says), or epoch milliseconds."""
    try:
        moment = parse_moment(text)
    except (ValueError, OverflowError, TypeError) as exc:
        raise ConfigError(f"--since {str(text)[:80]!r} is not a time: give an ISO date or "
                          f"datetime (UTC) or epoch milliseconds ({exc})") from exc
    if moment is None or pd.isna(moment):
        raise ConfigError(f"--since {str(text)[:80]!r} is not a time: give an ISO date or "
                          f"datetime (UTC) or epoch milliseconds")
    return moment


def reason_matches(reason: object, wanted: tuple[str, ...]) -> bool:
    """Whether a stored reason starts with one of `wanted`, or one of its `; ` parts does."""
    if not wanted:
        return True
    text = str(reason).casefold()
    parts = [text, *(part.strip() for part in text.split(";"))]
    return any(part.startswith(w.casefold()) for w in wanted for part in parts)


def reason_code(reason: str) -> str:
    """The summary's key of a reason: text before the first ':' (a dead letter's: before the
    second, `collector: <field>`), of its first `; ` part."""
    first = str(reason).split("; ")[0]
    pieces = [p.strip() for p in first.split(":")]
    if pieces[0] == REASON_PREFIX and len(pieces) > 2:
        return f"{pieces[0]}: {pieces[1]}"
    return pieces[0]


def replay(lake: Lake, reasons: tuple[str, ...] = (), since: datetime | None = None,
           dry_run: bool = False, rules: ReplayRules | None = None) -> ReplaySummary:
    """Replay the quarantine rows matching `reasons` (any; none: all) and `since` (their
    time - the event's, a dead letter's receipt - at or after it; rows with no time are
    left out when it is given). With `dry_run` nothing is written, not even a corrupt file
    set aside. A run (not a dry run) holds the lake's replay lock (`lock.py`): while another
    replay holds it, ReplayBusy at once, naming the holder."""
    if dry_run:
        return _replay(lake, reasons, since, dry_run, rules)
    with replay_lock(lake):
        return _replay(lake, reasons, since, dry_run, rules)


def _replay(lake: Lake, reasons: tuple[str, ...], since: datetime | None, dry_run: bool,
            rules: ReplayRules | None) -> ReplaySummary:
    rules = rules or ReplayRules()
    now = rules.now if rules.now is not None else pd.Timestamp.now(tz="UTC")
    wanted = tuple(parse_reason(r) for r in reasons)
    set_aside_before = len(lake.set_aside_keys)
    skipped: list[str] = []
    quarantined = _read(lake, window_keys(lake, QUARANTINE_ZONE, since), QUARANTINE_SCHEMA,
                        dry_run, skipped).to_pandas()
    if since is not None:
        quarantined = quarantined[quarantined[C.timestamp] >= pd.Timestamp(since)]
    if wanted:
        quarantined = quarantined[quarantined[C.reason].map(
            lambda r: reason_matches(r, wanted)).astype(bool)]
    quarantined = quarantined.drop_duplicates(C.quarantine_id)
    done = set(_read(lake, lake.list(REPLAYED_ZONE), REPLAYED_SCHEMA, dry_run, skipped,
                     [C.quarantine_id]).column(C.quarantine_id).to_pylist())
    before = quarantined[C.quarantine_id].isin(done)
    rows = quarantined[~before].reset_index(drop=True)

    candidates, owners, refused = rebuild(rows, rules)
    verdicts = judge(candidates, rules.validation, now)[C.reason] if len(candidates) \
        else pd.Series(dtype=object)
    passing = verdicts.isna().to_numpy()
    for owner, verdict in zip(owners[~passing], verdicts[~passing]):
        refused[owner] = str(verdict)
    events = candidates[passing].reset_index(drop=True)
    replayed = rows.loc[owners[passing]]

    written = already = 0
    if len(events):
        if dry_run:
            already = _already_present(lake, events, skipped)
            written = len(events) - already
        else:
            result = append_partitioned(lake, RAW_ZONE, events, C.event_id, RAW_EVENT_SCHEMA)
            written = result.written
            already = result.already_present + result.duplicates_in_batch
            # only once the raw zone holds their events
            record_replayed(lake, replayed, events[C.event_id], now)
    still: dict[str, int] = {}
    for reason in refused.values():
        code = reason_code(reason)
        still[code] = still.get(code, 0) + 1
    summary = ReplaySummary(
        lake=lake.uri, dry_run=dry_run, reasons=list(wanted), since=since, examined=len(rows),
        replayed=len(replayed), written=written, already_present=already,
        still_quarantined=dict(sorted(still.items())), previously_replayed=int(before.sum()),
        corrupt_files=[*lake.set_aside_keys[set_aside_before:], *skipped])
    log.info("quarantine replay%s: %d examined, %d replayed (%d new in the raw zone, %d "
             "already there), %d still quarantined", " (dry run)" if dry_run else "",
             summary.examined, summary.replayed, summary.written, summary.already_present,
             sum(still.values()))
    return summary


def rebuild(rows: pd.DataFrame, rules: ReplayRules) -> tuple[pd.DataFrame, pd.Series,
                                                              dict[int, str]]:
    """(the candidate events, in the raw layout; for each candidate, the index of the row it
    came from; the rows refused before validate's rules, with today's reason - or, for a
    line that cannot be read on its own, the reason it was quarantined for)."""
    frames: list[pd.DataFrame] = []
    owners: list[int] = []
    refused: dict[int, str] = {}
    has_raw = rows[C.raw].notna()
    identified = rows[[C.event_id, C.user_id, C.event_type, C.timestamp]].notna().any(axis=1)
    stored = rows[~has_raw & identified]
    if len(stored):
        frames.append(stored[list(RAW_EVENT_COLUMNS)])
        owners.extend(stored.index)
    for index, row in rows[~has_raw & ~identified].iterrows():
        refused[index] = str(row[C.reason])  # a withheld line: nothing left to read
    for index, row in rows[has_raw].iterrows():
        frame, reason = _reread(row, rules)
        if frame is None:
            refused[index] = str(reason)
        else:
            frames.append(frame)
            owners.extend([index] * len(frame))
    if not frames:
        return conform_events(RAW_EVENT_SCHEMA.empty_table().to_pandas(), "replay"), \
            pd.Series(owners, dtype="int64"), refused
    # each in the canonical dtypes first: one all-null column never decides a dtype
    candidates = pd.concat([conform_events(f, "replay") for f in frames], ignore_index=True)
    return candidates, pd.Series(owners, dtype="int64"), refused


def _reread(row: pd.Series, rules: ReplayRules) -> tuple[pd.DataFrame | None, str | None]:
    raw, reason = str(row[C.raw]), str(row[C.reason])
    if reason.startswith(DEAD_LETTER):
        return _dead_letter(raw, row[C.timestamp], rules)
    if raw.lstrip().startswith("{") and not reason.startswith(UNREADABLE_ALONE):
        result = jsonl.read_lines([raw.encode("utf-8", errors="replace")],
                                  Path("quarantine"))
        if len(result.rejects):
            return None, str(result.rejects[C.reason].iloc[0])
        return result.events, None
    return None, reason  # cannot be read on its own: stays as it is


def _dead_letter(raw: str, received: pd.Timestamp,
                 rules: ReplayRules) -> tuple[pd.DataFrame | None, str | None]:
    """A dead letter judged by the collector's checks as they stand, at the time it was
    received (event time bounds, a signature's expiry)."""
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, f"{REASON_PREFIX}: (event): the dead letter's text is not JSON"
    received_ms = None if pd.isna(received) else int(received.value // 1_000_000)
    bounds = TimeBounds(received_ms) if received_ms is not None else None
    binding = rules.binding
    if binding.active and received_ms is not None:
        binding = UserBinding(binding.mode, binding.keys, clock=lambda: received_ms / 1000)
    checked = validate_events([event], bounds, binding)
    if checked.rejected:
        return None, f"{REASON_PREFIX}: {checked.rejected[0].reason}"
    return rows_to_frame(checked.rows), None


def record_replayed(lake: Lake, replayed: pd.DataFrame, event_ids: pd.Series,
                    now: pd.Timestamp) -> None:
    """Record quarantine rows as replayed with the event_id each landed as (idempotent by
    the rows' id)."""
    replayed = replayed.reset_index(drop=True)
    record = pd.DataFrame({
        C.quarantine_id: replayed[C.quarantine_id],
        C.timestamp: replayed[C.timestamp].astype("datetime64[ms, UTC]"),
        C.event_id: event_ids.to_numpy(),
        REPLAYED_AT: pd.Series(now, index=replayed.index).astype("datetime64[ms, UTC]"),
    })
    append_partitioned(lake, REPLAYED_ZONE, record, C.quarantine_id, REPLAYED_SCHEMA)


def _already_present(lake: Lake, events: pd.DataFrame, skipped: list[str]) -> int:
    """How many of `events` an append to the raw zone would skip, read without writing."""
    unique = events.drop_duplicates(C.event_id)
    present = len(events) - len(unique)
    for day, part in unique.groupby(event_dates(unique), sort=True):
        keys = lake.list(partition_key(RAW_ZONE, str(day)))
        seen = set(_read(lake, keys, RAW_EVENT_SCHEMA, True, skipped,
                         [C.event_id]).column(C.event_id).to_pylist())
        present += int(part[C.event_id].isin(seen).sum())
    return present


def _read(lake: Lake, keys: list[str], schema: pa.Schema, dry_run: bool, skipped: list[str],
          columns: list[str] | None = None) -> pa.Table:
    """The files as one table; a corrupt one is set aside as every reader does, or with
    `dry_run` only skipped (and named)."""
    if not dry_run:
        return read_event_files(lake, keys, schema, columns)
    tables = []
    for key in keys:
        try:
            tables.append(lake.read_tables([key], columns=columns, schema=schema))
        except CorruptFileError as exc:
            log.warning("quarantine replay (dry run): %s skipped: %s", lake.url(key), exc)
            skipped.append(key)
    if not tables:
        return lake.read_tables([], columns=columns, schema=schema)
    return pa.concat_tables(tables)
