"""Byte ranges of a line-oriented file, for reading one file with several tasks at once
(the spark engine). A range yields the lines that *start* inside it, so consecutive ranges
give every line exactly once whatever the line lengths: Hadoop's line-reader rule."""
from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO


def byte_ranges(size: int, split_bytes: int) -> list[tuple[int, int]]:
    """[start, end) ranges of at most `split_bytes` covering `size` bytes (one if it fits)."""
    if split_bytes <= 0:
        raise ValueError(f"split_bytes must be positive, got {split_bytes}")
    if size <= split_bytes:
        return [(0, size)]
    return [(start, min(start + split_bytes, size)) for start in range(0, size, split_bytes)]


def lines_in_range(handle: BinaryIO, start: int, end: int) -> Iterator[bytes]:
    """The lines of a binary file that start at an offset in [start, end): the line a
    range's start falls inside belongs to the range before, the one its end falls inside is
    read whole."""
    if start > 0:
        handle.seek(start - 1)
        handle.readline()  # up to the first line break at or after start - 1
    else:
        handle.seek(0)
    position = handle.tell()
    while position < end:
        line = handle.readline()
        if not line:
            return
        yield line
        position += len(line)
