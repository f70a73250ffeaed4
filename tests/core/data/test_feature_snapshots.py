import pandas as pd
import pyarrow as pa
import pytest

from recsys.core.data.feature_snapshots import (
    latest_snapshot,
    list_snapshots,
    read_latest,
    snapshot_key,
    snapshot_time,
)
from recsys.core.data.lake import Lake
from recsys.core.online.business_rules import LEGACY_UNAVAILABLE, write_promotion, write_stock
from recsys.core.online.catalogue import Catalogue
from recsys.serving.live_rules import LiveRules

T = [pd.Timestamp(f"2026-10-0{d}T06:00:00Z") for d in (1, 3, 5)]


def write_items(lake: Lake, as_of: pd.Timestamp, category: str) -> None:
    frame = pd.DataFrame({"item_id": ["i1", "i2"], "category": [category, "toys"]})
    lake.write_table(snapshot_key("item_stats", as_of), pa.Table.from_pandas(frame))


def test_key_names_its_time_and_other_files_are_not_snapshots():
    key = snapshot_key("item_stats", pd.Timestamp("2026-10-01T06:00:00+02:00"))
    assert key == "features/item_stats/as_of=20261001T040000.parquet"
    assert snapshot_time(key) == pd.Timestamp("2026-10-01T04:00:00Z")
    assert snapshot_time("features/item_stats/.tmp-abc") is None
    assert snapshot_time("features/item_stats/as_of=garbage.parquet") is None


def check_latest(lake: Lake) -> None:
    assert latest_snapshot(lake, "item_stats") is None
    assert read_latest(lake, "item_stats") is None
    for stamp, category in zip(T, ["a", "b", "c"]):
        write_items(lake, stamp, category)
    lake.write_bytes("features/item_stats/README.txt", b"not a snapshot")
    assert [s for s, _ in list_snapshots(lake, "item_stats")] == T
    assert latest_snapshot(lake, "item_stats") == snapshot_key("item_stats", T[2])
    assert latest_snapshot(lake, "item_stats", as_of=T[1]) == snapshot_key("item_stats", T[1])
    assert latest_snapshot(lake, "item_stats", as_of=T[1] - pd.Timedelta(seconds=1)) \
        == snapshot_key("item_stats", T[0])
    assert latest_snapshot(lake, "item_stats", as_of=T[0] - pd.Timedelta(days=1)) is None
    assert latest_snapshot(lake, "user_stats") is None
    assert read_latest(lake, "item_stats", as_of=T[1])["category"].tolist() == ["b", "toys"]
    catalogue = Catalogue.from_lake(lake)
    assert catalogue.categories == {"i1": "c", "i2": "toys"}
    # stock and promotions are live data on the same lake (local or S3), read by serving
    lake.write_table(LEGACY_UNAVAILABLE,
                     pa.Table.from_pandas(pd.DataFrame({"item_id": ["i2"]})))
    rules = LiveRules(lake, refresh_seconds=0)
    assert rules.refresh().unavailable == {"i2"}
    write_stock(lake, ["i1"], available=False)
    now = pd.Timestamp.now(tz="UTC")
    write_promotion(lake, "i3", boost=2.0, starts_at=now - pd.Timedelta(hours=1),
                    ends_at=now + pd.Timedelta(hours=1), promotion_id="p")
    refreshed = rules.refresh()
    assert refreshed.unavailable == {"i1", "i2"} and set(refreshed.promotions) == {"i3"}


def test_latest_snapshot_on_a_local_lake(tmp_path):
    check_latest(Lake(str(tmp_path / "lake")))


@pytest.mark.integration
def test_latest_snapshot_on_an_s3_lake(s3_lake):
    check_latest(s3_lake)


def test_empty_lake_gives_an_empty_catalogue(tmp_path):
    catalogue = Catalogue.from_lake(Lake(str(tmp_path / "nothing")))
    assert catalogue.categories == {} and catalogue.unavailable == set()
    assert LiveRules(Lake(str(tmp_path / "nothing")), 0).refresh().unavailable == frozenset()
