"""Chaos on the pipeline's lake path: the lake's disk fills up, or turns read-only, during
an extract. The extract fails loudly naming the file, leaves no partial or temporary file
in the lake, and a re-run after the fault lands every event exactly once.

Needs root (a tmpfs is mounted for the lake); skipped otherwise."""
import json
import random

import pyarrow.parquet as pq
import pytest

from recsys.components.extract.extract import ExtractConfig, extract
from recsys.core.data.event_store import RAW_ZONE
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from recsys.core.errors import LakeError
from tests.lake_disks import remount, tmpfs

pytestmark = pytest.mark.integration
EVENTS = 3000
START_MS = 1_790_000_000_000


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs for the lake; yields its folder, unmounted afterwards."""
    with tmpfs(tmp_path / "lake", "1m") as folder:
        yield folder



def shop_source(tmp_path):
    """3,000 events over three days, each carrying 600 random bytes (as hex) of fields beyond
    the schema: about 2 MB of Parquet, twice the disk."""
    rng = random.Random(7)
    path = tmp_path / "shop.jsonl"
    with path.open("w") as handle:
        for n in range(EVENTS):
            handle.write(json.dumps({
                "event_id": f"e{n}", "user_id": f"u{n % 50}", "session_id": f"s{n % 50}",
                "event_type": "view", "timestamp": START_MS + n * 86_400, "properties": {
                    "product_id": f"p{n % 300}", "note": rng.randbytes(600).hex()}}) + "\n")
    return path


def assert_no_partial_files(folder) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert not path.name.startswith(".tmp-"), path
            if path.suffix == ".parquet":
                pq.read_metadata(path)  # a whole Parquet file, footer included


def assert_every_event_once(lake) -> None:
    ids = lake.read_tables(lake.list(RAW_ZONE), columns=["event_id"],
                           schema=RAW_EVENT_SCHEMA).column("event_id").to_pylist()
    assert len(ids) == EVENTS and len(set(ids)) == EVENTS


def test_a_full_disk_fails_the_extract_naming_the_file_and_a_rerun_lands_everything_once(
        tmp_path, small_disk):
    source, lake = shop_source(tmp_path), Lake(str(small_disk))
    with pytest.raises(LakeError) as failure:
        extract(ExtractConfig(source=str(source)), lake)
    message = str(failure.value)
    assert f"cannot write {small_disk}/{RAW_ZONE}/event_date=" in message
    assert "No space left on device" in message
    assert_no_partial_files(small_disk)
    remount(small_disk, "size=64m")  # the operator frees space
    report, window = extract(ExtractConfig(source=str(source)), lake)
    assert report.rows_written + report.rows_already_present == EVENTS
    assert len(window) == EVENTS
    assert_every_event_once(lake)
    assert_no_partial_files(small_disk)


def test_a_read_only_lake_fails_the_extract_naming_the_file_and_a_rerun_lands_everything(
        tmp_path, small_disk):
    source, lake = shop_source(tmp_path), Lake(str(small_disk))
    remount(small_disk, "ro")
    with pytest.raises(LakeError, match=f"cannot write {small_disk}/{RAW_ZONE}/event_date=.*"
                                        "Read-only file system"):
        extract(ExtractConfig(source=str(source)), lake)
    assert list(small_disk.iterdir()) == []
    remount(small_disk, "rw,size=64m")
    report, _ = extract(ExtractConfig(source=str(source)), lake)
    assert report.rows_written == EVENTS
    assert_every_event_once(lake)
    assert_no_partial_files(small_disk)
