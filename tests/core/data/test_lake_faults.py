"""The lake after faults: leftovers of killed writes, writes that fail, corrupt files."""
import os
import time

import pyarrow as pa
import pytest

from recsys.core.data.lake import Lake
from recsys.core.errors import LakeError


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


def test_a_truncated_file_is_set_aside_named_and_the_rest_of_its_partition_validated(
        tmp_path):
    import pandas as pd

    from recsys.components.validate.rules import ValidationConfig
    from recsys.components.validate.validate import validate_window
    from recsys.core.data.event_store import CLEAN_ZONE, RAW_ZONE, append_partitioned, read_window
    from recsys.core.data.schema import EVENT_SCHEMA, RAW_EVENT_SCHEMA, conform_events

    lake = Lake(str(tmp_path / "lake"))
    now = pd.Timestamp("2026-11-01T00:00:00Z")
    keys = []
    for part in range(3):  # three files in one date partition, two events each
        frame = conform_events(pd.DataFrame({
            "event_id": [f"e{part}{n}" for n in range(2)], "user_id": "u1", "item_id": "i1",
            "event_type": "view", "timestamp": now - pd.Timedelta(hours=5 - part)}), "test")
        keys += append_partitioned(lake, RAW_ZONE, frame, "event_id", RAW_EVENT_SCHEMA).files
    broken = keys[1]
    path = tmp_path / "lake" / broken
    path.write_bytes(path.read_bytes()[:100])  # a write cut short by a crash
    result = validate_window(lake, ValidationConfig(), now=now)
    assert result.report.rows_in == 4 and result.report.corrupt_files == [broken]
    assert sorted(read_window(lake, CLEAN_ZONE, EVENT_SCHEMA)["event_id"]) == [
        "e00", "e01", "e20", "e21"]
    assert lake.list(RAW_ZONE) == sorted([keys[0], keys[2]])
    assert not path.exists()
    assert len((tmp_path / "lake" / "corrupt" / broken).read_bytes()) == 100
    reason = lake.read_json(f"corrupt/{broken}.reason.json")
    assert reason["key"] == broken
    assert reason["reason"].startswith(f"{lake.url(broken)} is not a readable Parquet file")


@pytest.mark.integration
def test_a_corrupt_object_of_an_s3_lake_is_set_aside_the_same_way(s3_lake):
    from recsys.core.data.event_store import RAW_ZONE, read_event_files
    from recsys.core.data.schema import RAW_EVENT_SCHEMA

    good = pa.Table.from_pylist([{"event_id": "e1"}], schema=pa.schema(
        [RAW_EVENT_SCHEMA.field("event_id")]))
    s3_lake.write_table(f"{RAW_ZONE}/event_date=2026-09-21/part-good.parquet", good)
    broken = f"{RAW_ZONE}/event_date=2026-09-21/part-broken.parquet"
    s3_lake.write_bytes(broken, b"PAR1 cut short")
    table = read_event_files(s3_lake, s3_lake.list(RAW_ZONE), RAW_EVENT_SCHEMA, ["event_id"])
    assert table.column("event_id").to_pylist() == ["e1"]
    assert s3_lake.list(RAW_ZONE) == [f"{RAW_ZONE}/event_date=2026-09-21/part-good.parquet"]
    assert s3_lake.read_bytes(f"corrupt/{broken}") == b"PAR1 cut short"
    assert s3_lake.read_json(f"corrupt/{broken}.reason.json")["key"] == broken
