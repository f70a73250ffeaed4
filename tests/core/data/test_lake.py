import pandas as pd
import pyarrow as pa
import pytest

from recsys.core.data.lake import Lake
from recsys.core.data.schema import check_event_frame, conform_events
from recsys.core.errors import NotFoundError, SchemaError


def test_local_writes_are_atomic_and_listed(tmp_path):
    lake = Lake(str(tmp_path))
    lake.write_table("a/b/t.parquet", pa.table({"x": [1, 2]}))
    lake.write_json("a/meta.json", {"k": 1})
    assert lake.list("a") == ["a/b/t.parquet", "a/meta.json"]
    assert not [p for p in tmp_path.rglob(".tmp-*")]
    assert lake.read_table("a/b/t.parquet").column("x").to_pylist() == [1, 2]
    assert lake.read_json("a/meta.json") == {"k": 1}
    with pytest.raises(NotFoundError):
        lake.read_bytes("nope")


@pytest.mark.integration
def test_s3_lake_through_boto3(s3_server):
    import boto3

    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket="lake")
    lake = Lake("s3://lake/prefix", s3_endpoint_url=s3_server)
    lake.write_table("z/t.parquet", pa.table({"x": [3]}))
    assert lake.list("z") == ["z/t.parquet"]
    assert lake.exists("z/t.parquet") and not lake.exists("z/u.parquet")
    assert lake.read_table("z/t.parquet").column("x").to_pylist() == [3]
    with pytest.raises(NotFoundError):
        lake.read_bytes("z/missing")


def test_conform_names_missing_columns_and_converts_types():
    with pytest.raises(SchemaError) as info:
        conform_events(pd.DataFrame({"user_id": ["u"]}), "here")
    assert "event_id" in str(info.value) and "item_id" in str(info.value)
    frame = conform_events(pd.DataFrame({
        "event_id": [1, 2], "user_id": [10, 11], "item_id": ["a", "b"], "event_type": ["view"] * 2,
        "timestamp": [1_790_000_000_000, 1_790_000_000_001], "price": ["9.5", "abc"]}), "here")
    assert frame["user_id"].tolist() == ["10", "11"]
    assert frame["price"].iloc[0] == 9.5 and pd.isna(frame["price"].iloc[1])
    assert frame["parse_error"].tolist()[1] == "price not a number"
    check_event_frame(frame, "here")
    with pytest.raises(SchemaError, match="price"):
        check_event_frame(frame.assign(price=frame["price"].astype(str)), "here")


def test_a_folder_removed_while_listing_is_left_out_not_raised(tmp_path, monkeypatch):
    """Another process (retention) deletes a day while the lake lists its zone."""
    import os
    import shutil

    from recsys.core.data.lake import Lake

    lake = Lake(str(tmp_path))
    for day in ("2026-01-01", "2026-01-02"):
        lake.write_bytes(f"raw/events/event_date={day}/part-0.parquet", b"x")
    real_walk = os.walk

    def walk_that_loses_a_day(top, *args, **kwargs):
        for n, entry in enumerate(real_walk(top, *args, **kwargs)):
            if n == 0:
                shutil.rmtree(tmp_path / "raw/events/event_date=2026-01-01")
            yield entry

    monkeypatch.setattr(os, "walk", walk_that_loses_a_day)
    assert lake.list("raw/events/") == ["raw/events/event_date=2026-01-02/part-0.parquet"]
