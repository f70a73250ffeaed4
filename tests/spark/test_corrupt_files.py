"""The spark engine sets a corrupt lake file aside like the pandas engine: one damaged
file never stops its partition."""
import pandas as pd
import pytest

from recsys.core.data.event_store import RAW_ZONE, append_partitioned
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_SCHEMA, conform_events

pytestmark = pytest.mark.slow


def test_a_truncated_file_is_set_aside_and_the_rest_is_read(spark, tmp_path):
    from recsys.core.data.spark.lake_io import read_files

    lake = Lake(str(tmp_path / "lake"))
    now = pd.Timestamp("2026-11-01T00:00:00Z")
    keys = []
    for part in range(3):
        frame = conform_events(pd.DataFrame({
            "event_id": [f"e{part}{n}" for n in range(2)], "user_id": "u1", "item_id": "i1",
            "event_type": "view", "timestamp": now - pd.Timedelta(hours=5 - part)}), "test")
        keys += append_partitioned(lake, RAW_ZONE, frame, "event_id", RAW_EVENT_SCHEMA).files
    broken = keys[1]
    path = tmp_path / "lake" / broken
    path.write_bytes(path.read_bytes()[:100])
    rows = read_files(spark, lake, keys, RAW_EVENT_SCHEMA).select("event_id").collect()
    assert sorted(row.event_id for row in rows) == ["e00", "e01", "e20", "e21"]
    assert not path.exists()
    assert lake.read_json(f"corrupt/{broken}.reason.json")["key"] == broken
