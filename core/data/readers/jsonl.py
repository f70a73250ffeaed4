"""JSON Lines in the rich nested event format (docs/data.md, format `jsonl`).

Clean chunks go through Arrow's JSON parser; a chunk Arrow refuses (a broken line, a
field of the wrong type) is parsed line by line so that only the bad lines are rejected.
"""
from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterable
from itertools import islice
from pathlib import Path

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.json as pajson

from recsys.core.data.columns import Columns
from recsys.core.data.personal_data import is_personal_key, without_personal_data
from recsys.core.data.readers.base import (
    ReadResult,
    finish,
    map_event_types,
    open_text,
    timestamps_flexible,
)
from recsys.core.data.readers.line_ranges import lines_in_range
from recsys.core.data.schema import MAX_EXTRA_BYTES, NUMERIC_COLUMNS

C = Columns
NAME = "jsonl"
CHUNK_LINES = 50_000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# Nested path in the rich format -> canonical column.
FIELD_PATHS: dict[tuple[str, ...], str] = {
    ("event_id",): C.event_id,
    ("user_id",): C.user_id,
    ("session_id",): C.session_id,
    ("event_type",): C.event_type,
    ("timestamp",): C.timestamp,
    ("properties", "product_id"): C.item_id,
    ("properties", "price"): C.price,
    ("properties", "category"): C.category,
    ("properties", "brand"): C.brand,
    ("properties", "rating"): C.rating,
    ("context", "page", "url"): C.page_url,
    ("context", "page", "referrer"): C.referrer,
    ("context", "device", "type"): C.device_type,
    ("context", "user", "segment"): C.segment,
    ("context", "user", "login_status"): C.login_status,
    ("context", "campaign", "utm_source"): C.utm_source,
    ("context", "campaign", "utm_campaign"): C.utm_campaign,
    ("context", "weather", "status"): C.weather_status,
    ("context", "weather", "temperature"): C.temperature,
    ("context", "temporal", "time_of_day"): C.time_of_day,
    ("context", "temporal", "day_of_week"): C.day_of_week,
    ("properties", "query"): C.query,
    ("properties", "source"): C.source,
    ("properties", "recommendation_id"): C.recommendation_id,
}
IGNORED_PATHS: tuple[tuple[str, ...], ...] = (("user_signature",),)
"""Fields read and not stored: the collector's proof of a user id (docs/security.md)."""


def _known_tree() -> dict:
    tree: dict = {}
    for path in (*FIELD_PATHS, *IGNORED_PATHS):
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = None
    return tree


KNOWN_TREE = _known_tree()


def unknown_fields(record: dict, known: dict = KNOWN_TREE) -> dict:
    """The parts of a rich-format record the schema has no column for, nested as sent
    (null values left out): what goes into the `extra` column."""
    found = {}
    for key, value in record.items():
        if value is None:
            continue
        if key not in known:
            found[key] = value
        elif isinstance(known[key], dict) and isinstance(value, dict):
            inner = unknown_fields(value, known[key])
            if inner:
                found[key] = inner
    return found


def extra_json(record: dict) -> tuple[str | None, str | None]:
    """(the `extra` JSON of a record, a parse problem when it cannot be kept: over
    MAX_EXTRA_BYTES, or not writable as JSON). Personal data (IP addresses, user agents) is
    left out at any depth (recsys.core.data.personal_data)."""
    found = without_personal_data(unknown_fields(record))
    if not found:
        return None, None
    try:
        text = orjson.dumps(found, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
                            ).decode()
    except orjson.JSONEncodeError as exc:  # nested deeper than 254, an int beyond 64 bits
        return None, f"fields beyond the schema cannot be kept as JSON: {exc}"
    if len(text) > MAX_EXTRA_BYTES:
        return None, (f"fields beyond the schema take {len(text)} bytes as JSON; at most "
                      f"{MAX_EXTRA_BYTES} are kept")
    return text, None

_S = pa.string()
ARROW_SCHEMA = pa.schema([
    pa.field("event_id", _S), pa.field("user_id", _S), pa.field("session_id", _S),
    pa.field("event_type", _S), pa.field("timestamp", pa.int64()),
    pa.field("properties", pa.struct([
        pa.field("product_id", _S), pa.field("price", pa.float64()),
        pa.field("category", _S), pa.field("brand", _S), pa.field("rating", pa.float64()),
        pa.field("query", _S), pa.field("source", _S), pa.field("recommendation_id", _S),
    ])),
    pa.field("context", pa.struct([
        pa.field("page", pa.struct([pa.field("url", _S), pa.field("referrer", _S)])),
        pa.field("device", pa.struct([pa.field("type", _S)])),
        pa.field("weather", pa.struct([pa.field("status", _S),
                                       pa.field("temperature", pa.float64())])),
        pa.field("temporal", pa.struct([pa.field("time_of_day", _S),
                                        pa.field("day_of_week", _S)])),
        pa.field("user", pa.struct([pa.field("segment", _S), pa.field("login_status", _S)])),
        pa.field("campaign", pa.struct([pa.field("utm_source", _S),
                                        pa.field("utm_campaign", _S)])),
    ])),
])


def read(path: Path) -> ReadResult:
    """Read a `.jsonl`/`.ndjson` file (optionally `.gz`) of rich-format events."""
    with open_text(path) as handle:
        return read_lines(handle, path)


def read_range(path: Path, start: int, end: int) -> ReadResult:
    """The events of the lines starting at a byte offset in [start, end) of an uncompressed
    file (`line_ranges`): one task's share of a file read by several."""
    with open(path, "rb") as handle:
        return read_lines(lines_in_range(handle, start, end), path)


def splittable(path: Path) -> bool:
    """Whether several tasks may read parts of this file and give the rows one reader
    would: uncompressed (byte offsets are seekable), and its first event names its session
    (a file without session ids is sessionized as a whole, which a part cannot do)."""
    if path.suffix == ".gz":
        return False
    with open(path, "rb") as handle:
        first = next((line for line in handle if line.strip()), b"")
    try:
        record = orjson.loads(first)
    except orjson.JSONDecodeError:
        return False
    return isinstance(record, dict) and bool(record.get("session_id"))


def read_lines(lines: Iterable[bytes], path: Path) -> ReadResult:
    """Rich-format events from lines of `path` (all of them, or a range's)."""
    frames, rejects = [], []
    lines = iter(lines)
    while True:
        chunk = list(islice(lines, CHUNK_LINES))
        if not chunk:
            break
        frame, bad = _parse_chunk(chunk)
        frames.append(frame)
        rejects.extend(bad)
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=list(FIELD_PATHS.values()))
    raw_ts = frame[C.timestamp].copy()
    frame[C.timestamp] = timestamps_flexible(raw_ts)
    frame[C.event_type] = map_event_types(frame[C.event_type].astype(object))
    reject_frame = pd.DataFrame(rejects, columns=[C.raw, C.reason])
    return ReadResult(finish(frame, f"{NAME} {path}", NAME, raw_ts), reject_frame)


def _parse_chunk(lines: list[bytes]) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    try:
        return _arrow_frame(lines), []
    except Exception:  # noqa: BLE001 - Arrow's errors, orjson's depth limit, ...: whatever
        # refuses the fast path, each line is then judged on its own and its fault named
        return _parse_after_dropping_broken(lines)


def _arrow_frame(lines: list[bytes]) -> pd.DataFrame:
    lines = [line for line in lines if line.strip()]
    body = b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines)
    # Arrow (25) crashes the process on a chunk that starts with `null`, reads a later
    # `null` line as an empty event and a `\r` as a line break: only lines that start an
    # object and hold no `\r` take the fast path
    if b"\r" in body or any(line.lstrip(b" \t")[:1] != b"{" for line in lines):
        raise ValueError("a line that does not start a JSON object")
    table = pajson.read_json(
        io.BytesIO(body),
        read_options=pajson.ReadOptions(block_size=max(len(body), 1 << 20)),
        parse_options=pajson.ParseOptions(explicit_schema=ARROW_SCHEMA,
                                          unexpected_field_behavior="infer"),
    )
    if table.num_rows != len(lines):  # Arrow reads `{..} {..}` or a `\r` as two rows
        raise ValueError(f"{table.num_rows} rows from {len(lines)} lines")
    known = table.select(ARROW_SCHEMA.names).cast(ARROW_SCHEMA) \
        if table.schema != ARROW_SCHEMA else table
    flat = known.flatten().flatten().flatten()
    frame = pd.DataFrame({
        column: flat.column(".".join(path)).to_pandas() for path, column in FIELD_PATHS.items()
    })
    frame[C.timestamp] = frame[C.timestamp].astype("Int64")
    if table.schema != ARROW_SCHEMA:  # some line carries fields beyond the schema
        extras = [extra_json(record) for record in table.to_pylist()]
        frame[C.extra] = [text for text, _ in extras]
        problems = [problem for _, problem in extras]
        if any(problems):
            frame[C.parse_error] = problems
    return frame


def _parse_after_dropping_broken(lines: list[bytes]) -> tuple[pd.DataFrame,
                                                              list[tuple[str, str]]]:
    """Reject the lines that are not JSON objects (each with its reason), then retry the
    fast path on the rest; only a chunk with wrongly typed fields falls back to building
    its rows one by one. Every non-blank line ends as a row or a reject."""
    good, rejects = [], []
    for line in lines:
        if not line.strip():
            continue
        reason = parse_line(line)[1]  # the object is dropped: holding 50k costs more
        if reason is not None:
            rejects.append((reject_text(line), reason))
        else:
            good.append(line)
    if not good:
        return pd.DataFrame(columns=list(FIELD_PATHS.values())), rejects
    try:
        return _arrow_frame(good), rejects
    except Exception:  # noqa: BLE001 - as in _parse_chunk: the rows are built one by one
        pass
    rows = []
    for line in good:
        try:
            record, reason = parse_line(line)
            if record is None:  # cannot happen: every good line parsed above
                raise ValueError(reason)
            rows.append(_row(record))
        except Exception as exc:  # noqa: BLE001 - one poison line never fails the file
            rejects.append((reject_text(line),
                            f"unreadable event: {type(exc).__name__}: {str(exc)[:200]}"))
    frame = pd.DataFrame(rows, columns=[*FIELD_PATHS.values(), C.extra, C.parse_error])
    return frame.astype(object), rejects


def parse_line(line: bytes) -> tuple[dict | None, str | None]:
    """(the event object of one line, None) or (None, why the line is not one).

    Strict JSON (orjson) first; a line only Python's lenient parser reads is accepted when
    its one liberty is `NaN` / `Infinity`, which Arrow's fast path reads the same way (a
    missing price, an out-of-range one), so a line's fate does not depend on its chunk.
    Invalid UTF-8 and lone surrogates are refused: Parquet could not store them."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as strict:
        record, reason = _lenient(line, strict)
        if reason is not None:
            return None, reason
    if not isinstance(record, dict):
        return None, f"malformed event: expected an object, got {type(record).__name__}"
    return record, None


def _lenient(line: bytes, strict: orjson.JSONDecodeError) -> tuple[object, str | None]:
    refused = f"malformed JSON: {strict.msg} at column {strict.colno}"
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"malformed JSON: not UTF-8 (byte {exc.start} is 0x{line[exc.start]:02x})"
    try:
        record = json.loads(text)
        json.dumps(record, ensure_ascii=False).encode("utf-8")  # lone surrogates refuse
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeEncodeError
        return None, refused
    return record, None


def _row(record: dict) -> dict:
    record = without_personal_data(record)
    row = {column: _column_value(_dig(record, path), column)
           for path, column in FIELD_PATHS.items()}
    row[C.extra], row[C.parse_error] = extra_json(record)
    return row


def _column_value(value: object, column: str) -> object:
    """A value a canonical column can take whatever the line sent: numbers for the numeric
    columns and the timestamp while they fit, text otherwise (conform_events and
    timestamps_flexible then name what does not convert)."""
    if value is None or isinstance(value, str):
        return value
    if column in NUMERIC_COLUMNS or column == C.timestamp:
        if isinstance(value, float) and (column != C.timestamp or math.isfinite(value)):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and \
                INT64_MIN <= value <= INT64_MAX:
            return value
    return str(value)


def reject_text(line: bytes) -> str:
    """A refused line as kept in quarantine: decoded (bad bytes replaced) and with the
    values of personal-data keys (`"ip": "..."`, `"userAgent": ...`) withheld."""
    return redact_personal_text(line.decode("utf-8", errors="replace").strip())


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?', re.S)  # a JSON string, perhaps cut short
_COLON = re.compile(r"\s*:\s*")


def _string_at(text: str, i: int) -> str:
    """The JSON string token that starts at the quote `text[i]` (perhaps cut short)."""
    match = _STRING.match(text, i)
    if match is None:  # cannot happen: the pattern matches whatever follows a quote
        raise ValueError(f"no JSON string at position {i}")
    return match.group(0)


def redact_personal_text(text: str) -> str:
    """`text` with the value of every personal-data key written in it (`"ip": ...`,
    `"userAgent": {...}`) replaced by `"<withheld>"`: for lines no parser could read, whose
    raw text quarantine keeps. Strings are scanned as JSON strings, so a quote inside one
    never misaligns what follows."""
    out, i = [], 0
    while i < len(text):
        if text[i] != '"':
            out.append(text[i])
            i += 1
            continue
        token = _string_at(text, i)
        i += len(token)
        out.append(token)
        colon = _COLON.match(text, i)
        if colon and is_personal_key(_key_text(token)):
            out.append(colon.group(0) + '"<withheld>"')
            i = _value_end(text, colon.end())
    return "".join(out)


def _key_text(token: str) -> str:
    try:
        return json.loads(token)
    except ValueError:
        return token.strip('"')


def _value_end(text: str, i: int) -> int:
    """Where the JSON value starting at `i` ends (or the text, if it is cut short)."""
    depth = 0
    while i < len(text):
        char = text[i]
        if char == '"':
            i += len(_string_at(text, i))
            if depth == 0:
                return i
            continue
        if char in "[{":
            depth += 1
        elif char in "]}":
            if depth <= 1:
                return i + 1 if depth == 1 else i
            depth -= 1
        elif char == "," and depth == 0:
            return i
        i += 1
    return i


def _dig(record: dict, path: tuple[str, ...]):
    value: object = record
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if isinstance(value, (dict, list)):
        return _json_text(value)
    if isinstance(value, bool):  # the rich JSON event sends login_status as a boolean
        return "true" if value else "false"
    return value


def _json_text(value: object) -> str:
    # raises for a value deeper than orjson writes or an integer beyond 64 bits: the line
    # is then refused with that reason (_parse_after_dropping_broken)
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
