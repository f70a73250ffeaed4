"""What every reader returns, and the helpers readers share."""
from __future__ import annotations

import codecs
import gzip
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from recsys.core.data.columns import EVENT_TYPE_ALIASES, Columns
from recsys.core.data.personal_data import is_personal_key
from recsys.core.data.schema import conform_events

C = Columns

SESSION_GAP = pd.Timedelta(minutes=30)
MAX_EPOCH_MS = 9.2e15
"""Epoch milliseconds beyond this are past pandas' timestamps (year 2262): not a time."""


@dataclass
class ReadResult:
    """Canonical events plus the input lines no reader could turn into an event."""

    events: pd.DataFrame
    rejects: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({C.raw: pd.Series(dtype=object),
                                              C.reason: pd.Series(dtype=object)})
    )

    @staticmethod
    def concat(results: list["ReadResult"]) -> "ReadResult":
        events = pd.concat([r.events for r in results], ignore_index=True)
        rejects = pd.concat([r.rejects for r in results], ignore_index=True)
        return ReadResult(events=events, rejects=rejects)


def open_text(path: Path) -> io.BufferedReader:
    """Open a source file for binary reading, decompressing `.gz` transparently."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def read_csv_strings(path: Path, delimiter: str = ",") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a CSV with every column as text; rows with the wrong field count are rejected.

    Columns named like an IP address or a user agent (recsys.core.data.personal_data) are
    dropped as read, and a broken row of such a file is quarantined without its text."""
    bad: list[tuple[str | None, str]] = []
    with open_text(path) as handle:
        header = handle.readline().decode("utf-8-sig", errors="replace").strip().split(
            delimiter)
    personal = [name for name in header if is_personal_key(name.strip().strip('"'))]

    def on_invalid(row: pacsv.InvalidRow) -> str:
        reason = (f"malformed row: expected {row.expected_columns} fields, got "
                  f"{row.actual_columns} (row {len(bad) + 1} refused in {path.name})")
        if personal:  # which field is which is unknown in a broken row: keep none of it
            bad.append((None, f"{reason}; row withheld: the file has personal-data "
                              f"column(s) {', '.join(personal)}"))
        else:
            bad.append((row.text, reason))
        return "skip"

    def read(source) -> pa.Table:
        return pacsv.read_csv(
            source,
            read_options=pacsv.ReadOptions(block_size=16 << 20),
            parse_options=pacsv.ParseOptions(delimiter=delimiter,
                                             invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                strings_can_be_null=True,
                null_values=["", "NA", "NaN", "null", "NULL", "None"],
            ),
        )

    try:
        table = read(_maybe_gunzip(path))
    except pa.ArrowInvalid:
        if _is_utf8(path):
            raise
        # Arrow refuses the whole file for one line that is not UTF-8: such lines are
        # refused on their own, the others read as usual
        bad.clear()
        body, not_utf8 = _utf8_lines(path, personal)
        table = read(pa.BufferReader(body))
        bad.extend(not_utf8)
    table = table.drop_columns([name for name in table.column_names
                                if is_personal_key(name.strip().strip('"'))])
    frame = table.to_pandas()
    frame.columns = [c.strip() for c in frame.columns]
    rejects = pd.DataFrame(bad, columns=[C.raw, C.reason])
    return frame, rejects


def _is_utf8(path: Path) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    with open_text(path) as handle:
        try:
            while block := handle.read(1 << 24):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _utf8_lines(path: Path, personal: list[str]) -> tuple[bytes, list[tuple[str | None, str]]]:
    """(the file without its lines that are not UTF-8, those lines as rejects: decoded with
    replacement, or withheld when the file has personal-data columns)."""
    kept: list[bytes] = []
    refused: list[tuple[str | None, str]] = []
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if number == 1:  # the header: kept, as read_csv_strings decoded it
                kept.append(line.decode("utf-8", errors="replace").encode())
                continue
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                reason = f"malformed row: not UTF-8 (byte {exc.start} of line {number} of " \
                         f"{path.name})"
                if personal:
                    refused.append((None, f"{reason}; row withheld: the file has "
                                          f"personal-data column(s) {', '.join(personal)}"))
                else:
                    refused.append((line.decode("utf-8", errors="replace").strip(), reason))
                continue
            kept.append(line)
    return b"".join(kept), refused


def _maybe_gunzip(path: Path):
    return pacsv.CompressedInputStream(pa.OSFile(str(path)), "gzip") if path.suffix == ".gz" \
        else str(path)


def map_event_types(raw_types: pd.Series) -> pd.Series:
    """Map source event names to canonical ones; unknown names pass through for validate."""
    normalised = raw_types.str.strip().str.lower()
    mapped = normalised.map(EVENT_TYPE_ALIASES)
    return mapped.where(mapped.notna(), raw_types)


CONTENT_ID_FIELDS = (C.user_id, C.item_id, C.event_type, C.timestamp)
CONTENT_ID_PREFIX = "content"


def synthesize_event_ids(frame: pd.DataFrame, prefix: str, columns: list[str]) -> pd.Series:
    """Deterministic ids for sources without one: a hash of the identifying fields.

    Identical source rows get the same id, so re-reading a file never duplicates and
    exact duplicate rows collapse into one event.
    """
    hashed = pd.util.hash_pandas_object(frame[columns].astype(str), index=False).to_numpy()
    return pd.Series([f"{prefix}_{h:016x}" for h in hashed.tolist()], index=frame.index,
                     dtype=object)


def sessionize(frame: pd.DataFrame, prefix: str) -> pd.Series:
    """Session ids from a 30-minute inactivity gap per user, for sources without sessions."""
    order = frame.sort_values([C.user_id, C.timestamp], kind="stable")
    new_user = order[C.user_id].ne(order[C.user_id].shift())
    gap = order[C.timestamp].diff().gt(SESSION_GAP) | order[C.timestamp].isna()
    starts = (new_user | gap).astype(np.int64)
    number = starts.groupby(order[C.user_id]).cumsum()
    ids = prefix + "_" + order[C.user_id].astype(str) + "_" + number.astype(str)
    return ids.reindex(frame.index)


def timestamps_from_epoch(values: pd.Series) -> pd.Series:
    """Epoch numbers (seconds or milliseconds, told apart by size) as UTC timestamps."""
    numbers = pd.to_numeric(values, errors="coerce")
    millis = numbers.where(numbers.abs() >= 1e11, numbers * 1000)
    # beyond pandas' range (year 2262) to_datetime raises instead of coercing: not a time
    millis = millis.where(millis.abs() < MAX_EPOCH_MS)
    return pd.to_datetime(millis, unit="ms", utc=True, errors="coerce").astype(
        "datetime64[ms, UTC]")


def timestamps_flexible(values: pd.Series) -> pd.Series:
    """Epoch numbers or ISO-8601 text as UTC timestamps; unparseable values become NaT."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return timestamps_from_epoch(values)  # no text to parse: skip a million objects
    text = values.astype(object)
    numeric = pd.to_numeric(text, errors="coerce")
    out = timestamps_from_epoch(numeric)
    textual = numeric.isna() & text.notna()
    if textual.any():
        parsed = pd.to_datetime(text[textual], utc=True, errors="coerce", format="mixed")
        out[textual] = parsed.astype("datetime64[ms, UTC]")
    return out


def finish(frame: pd.DataFrame, where: str, source_name: str,
           raw_timestamps: pd.Series | None = None) -> pd.DataFrame:
    """Note unparseable timestamps, fill missing session ids, conform to the canonical schema."""
    if raw_timestamps is not None:
        bad = frame[C.timestamp].isna()
        if bad.any():
            notes = "timestamp not a time: " + raw_timestamps[bad].astype(str).str.slice(0, 40)
            if C.parse_error in frame.columns:  # of any dtype: all-null reads as float
                frame[C.parse_error] = frame[C.parse_error].astype(object)
                prior = frame.loc[bad, C.parse_error]
                notes = notes.where(prior.isna(), prior.astype(str) + "; " + notes)
            else:
                frame[C.parse_error] = None
            frame.loc[bad, C.parse_error] = notes
    if C.session_id not in frame.columns or frame[C.session_id].isna().all():
        frame[C.session_id] = sessionize(frame, source_name)
    if C.event_id not in frame.columns:
        frame[C.event_id] = None
    ids = frame[C.event_id]
    no_id = ids.isna() | ids.astype(str).str.strip().eq("")
    if no_id.any():
        # an event without an id (missing or empty) is still an event: it gets an id from
        # its own fields only (never from the file it came in, nor a derived session), so
        # the same event read from two files is one event
        identity = [c for c in CONTENT_ID_FIELDS if c in frame.columns]
        frame.loc[no_id, C.event_id] = synthesize_event_ids(frame[no_id], CONTENT_ID_PREFIX,
                                                            identity)
    return conform_events(frame, where)
