"""The lake after faults: leftovers of killed writes, writes that fail, corrupt files."""
import os
import time

import pyarrow as pa
import pytest

from recsys.core.errors import LakeError
from recsys.core.lake import Lake


def test_a_write_removes_old_leftovers_of_killed_writes_in_its_folder_not_young_ones(
        tmp_path):
    lake = Lake(str(tmp_path))
    folder = tmp_path / "raw" / "events" / "event_date=2026-09-21"
    folder.mkdir(parents=True)
    killed = folder / ".tmp-killed"  # a write killed an hour ago, before its rename
    killed.write_bytes(b"half a parquet file")
    an_hour_ago = time.time() - 3600  # the threshold is 30 minutes
    os.utime(killed, (an_hour_ago, an_hour_ago))
    running = folder / ".tmp-running"  # a concurrent writer still writing
    running.write_bytes(b"being written")
    elsewhere = tmp_path / "raw" / ".tmp-other-folder"
    elsewhere.write_bytes(b"x")
    os.utime(elsewhere, (an_hour_ago, an_hour_ago))
    lake.write_table("raw/events/event_date=2026-09-21/part-1.parquet", pa.table({"x": [1]}))
    assert sorted(p.name for p in folder.iterdir()) == [".tmp-running", "part-1.parquet"]
    assert elsewhere.exists()  # only the folder written into is swept
    assert lake.list("raw") == ["raw/events/event_date=2026-09-21/part-1.parquet"]


def test_a_write_into_a_read_only_folder_fails_naming_it_and_leaves_nothing(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders: the full-disk test covers root")
    lake = Lake(str(tmp_path))
    folder = tmp_path / "raw"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(LakeError, match=f"cannot write {folder}/t.parquet"):
            lake.write_table("raw/t.parquet", pa.table({"x": [1]}))
    finally:
        folder.chmod(0o700)
    assert list(folder.iterdir()) == []
