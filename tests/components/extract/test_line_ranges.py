"""A JSONL file read as byte ranges by several readers gives the rows one reader gives."""
import json

import pandas as pd
import pytest

from recsys.core.data.readers import jsonl
from recsys.core.data.readers.line_ranges import byte_ranges, lines_in_range


def test_ranges_cover_the_file_and_fit_a_small_one_whole():
    assert byte_ranges(10, 100) == [(0, 10)]
    assert byte_ranges(10, 4) == [(0, 4), (4, 8), (8, 10)]
    with pytest.raises(ValueError):
        byte_ranges(10, 0)


@pytest.mark.parametrize("split", [1, 2, 3, 7, 16, 1000])
def test_every_line_is_read_once_whatever_the_cut(tmp_path, split):
    lines = [b"a\n", b"\n", b"bbbbbbb\n", b"cc\n", b"d" * 20 + b"\n", b"last-without-break"]
    path = tmp_path / "f.txt"
    path.write_bytes(b"".join(lines))
    read = []
    with open(path, "rb") as handle:
        for start, end in byte_ranges(path.stat().st_size, split):
            read += list(lines_in_range(handle, start, end))
    assert read == lines


def event(n: int, **changes) -> dict:
    return {"event_id": f"e{n}", "user_id": f"u{n % 3}", "session_id": f"s{n % 5}",
            "event_type": "view", "timestamp": 1_764_000_000_000 + n * 1000,
            "properties": {"product_id": f"p{n % 7}", "price": 10.0 + n},
            "context": {"device": {"type": "mobile"}}, **changes}


def write_events(path, count: int) -> None:
    lines = []
    for n in range(count):
        if n % 17 == 5:
            lines.append(json.dumps(event(n))[:40])  # a broken line
        elif n % 23 == 7:
            lines.append(json.dumps(event(n, extra_field={"kept": n})))
        else:
            lines.append(json.dumps(event(n)))
    path.write_text("\n".join(lines) + "\n")


def nulls_as_none(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(object).where(frame.notna(), None)


def test_ranges_of_a_jsonl_file_give_its_rows_and_rejects(tmp_path):
    path = tmp_path / "events.jsonl"
    write_events(path, 400)
    whole = jsonl.read(path)
    assert jsonl.splittable(path)
    parts = [jsonl.read_range(path, start, end)
             for start, end in byte_ranges(path.stat().st_size, 997)]
    assert len(parts) > 10
    events = pd.concat([p.events for p in parts], ignore_index=True)
    rejects = pd.concat([p.rejects for p in parts], ignore_index=True)
    # the same values; a column a part never filled is NaN after concat where the whole
    # file's reader has None: both are null in the lake
    pd.testing.assert_frame_equal(nulls_as_none(events), nulls_as_none(whole.events))
    pd.testing.assert_frame_equal(rejects, whole.rejects)
    assert len(whole.rejects) == 24 and whole.events[
        "extra"].notna().sum() == len([n for n in range(400) if n % 23 == 7 and n % 17 != 5])


def test_a_file_without_session_ids_or_compressed_is_read_whole(tmp_path):
    no_sessions = tmp_path / "no_sessions.jsonl"
    no_sessions.write_text(json.dumps(event(1, session_id=None)) + "\n")
    compressed = tmp_path / "events.jsonl.gz"
    compressed.write_bytes(b"")
    assert not jsonl.splittable(no_sessions)
    assert not jsonl.splittable(compressed)
