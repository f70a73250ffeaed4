"""Pick the reader for a file or folder, from its header or the caller's word."""
from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from recsys.core.data.readers import (
    avro_events,
    diginetica,
    jsonl,
    movielens,
    rees46,
    retailrocket,
    user_events,
)
from recsys.core.data.readers.base import ReadResult, open_text
from recsys.core.errors import ConfigError, NotFoundError, UnknownFormatError
from recsys.core.progress import progress

log = logging.getLogger(__name__)

READERS: dict[str, Callable[[Path], ReadResult]] = {
    jsonl.NAME: jsonl.read,
    retailrocket.NAME: retailrocket.read,
    rees46.NAME: rees46.read,
    user_events.NAME: user_events.read,
    movielens.NAME: movielens.read,
    avro_events.NAME: avro_events.read,
    diginetica.NAME: diginetica.read,
}
SUPPORTED_FORMATS: tuple[str, ...] = tuple(READERS)

# Checked in order: the most specific marker set first.
_HEADER_MARKERS: tuple[tuple[str, set[str]], ...] = (
    (rees46.NAME, rees46.MARKER_COLUMNS),
    (retailrocket.NAME, retailrocket.MARKER_COLUMNS),
    (movielens.NAME, movielens.MARKER_COLUMNS),
    (user_events.NAME, user_events.MARKER_COLUMNS),
    (diginetica.NAME, diginetica.MARKER_COLUMNS),
)
# A folder holding one of these files is read as that layout, siblings included.
_FOLDER_MARKERS: tuple[tuple[str, str], ...] = (
    ("events.csv", retailrocket.NAME),
    ("ratings.csv", movielens.NAME),
    ("user_events.csv", user_events.NAME),
)
_DATA_SUFFIXES = {".jsonl", ".ndjson", ".json", ".csv", ".avro"}


def detect_format(path: Path) -> str:
    """Name the layout of a single file from its first bytes (Avro) or line."""
    if avro_events.is_avro(path):
        return avro_events.NAME
    with open_text(path) as handle:
        first = handle.readline().decode("utf-8-sig", errors="replace").strip()
    if first.startswith("{"):
        return jsonl.NAME
    delimiter = ";" if first.count(";") > first.count(",") else ","
    columns = [c.strip().strip('"') for c in first.split(delimiter)]
    seen = set(columns)
    for name, markers in _HEADER_MARKERS:
        if markers <= seen:
            return name
    raise UnknownFormatError(str(path), columns, SUPPORTED_FORMATS)


def source_files(path: Path) -> list[tuple[Path, str | None]]:
    """The files to read for a path: (file, format if the folder layout fixes it)."""
    if not path.exists():
        raise NotFoundError(f"source not found: {path}")
    if path.is_file():
        return [(path, None)]
    for marker, name in _FOLDER_MARKERS:
        if (path / marker).exists():
            return [(path, name)]
    files = sorted(p for p in path.rglob("*") if p.is_file() and _is_data_file(p))
    if not files:
        raise UnknownFormatError(str(path), [p.name for p in path.iterdir()], SUPPORTED_FORMATS)
    return [(f, None) for f in files]


def _is_data_file(path: Path) -> bool:
    suffixes = path.suffixes
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in _DATA_SUFFIXES and not path.name.startswith(".")


def read_source(path: Path | str, fmt: str | None = None) -> ReadResult:
    """Read a file or a folder of files into canonical events (+ rejected lines)."""
    path = Path(path)
    if fmt is not None and fmt not in READERS:
        raise ConfigError(f"unknown format {fmt!r}; supported formats: "
                          f"{', '.join(SUPPORTED_FORMATS)}")
    results = []
    files = source_files(path)
    for file, folder_format in progress(files, desc="read", total=len(files)):
        results.append(read_file(file, fmt or folder_format))
    return ReadResult.concat(results)


def read_file(file: Path, fmt: str | None = None) -> ReadResult:
    """Read one entry of `source_files` (a file, or a folder of a folder layout)."""
    name = fmt or detect_format(file)
    log.info("reading %s as %s", file, name)
    return READERS[name](file)
