"""Lake retention under faults: `recsys lake retain` killed (SIGKILL) partway through its
deletions, a read-only lake disk (a tmpfs remounted read-only: root), an S3 endpoint that
stops answering (a moto server SIGSTOPped) before or during the run. Each time: what went
was expired, nothing outside the policy went, and the next run deletes the rest."""
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from recsys.core.data import lake as lake_module
from recsys.core.data.lake import Lake
from recsys.core.data.retention import retain
from recsys.core.errors import LakeError
from recsys.tools.local_services import freeze_process
from tests.core.data.test_lake_s3_frozen import frozen_s3  # noqa: F401 - a fixture
from tests.lake_disks import tmpfs

TODAY = datetime.now(timezone.utc).date()  # as `recsys lake retain` takes it
EXPIRED_DAYS = range(10, 160)  # 150 expired days, two objects each
KEPT_DAYS = range(0, 8)
POLICY = {"raw": 7}


def day(offset: int) -> str:
    return (TODAY - timedelta(days=offset)).isoformat()


def history(lake: Lake, expired=EXPIRED_DAYS) -> tuple[set[str], set[str]]:
    """(keys past the 7-day raw policy, keys it must keep: recent days, undated, other
    zones, a sibling prefix)."""
    going = {f"raw/events/event_date={day(o)}/{name}" for o in expired
             for name in ("part-a.parquet", "hour=04/part-b.parquet")}
    kept = {f"raw/events/event_date={day(o)}/part-a.parquet" for o in KEPT_DAYS} | {
        "raw/events/event_date=unknown/part-u.parquet",
        f"raw/events2/event_date={day(30)}/part-x.parquet",
        f"clean/events/event_date={day(30)}/part-a.parquet",
        f"quarantine/events/event_date={day(30)}/part-a.parquet"}
    for key in going | kept:
        lake.write_bytes(key, b"x" * 10)
    return going, kept


def files(lake: Lake) -> set[str]:
    """The lake's files, listed while retention removes folders (os.walk skips a folder
    gone meanwhile; Lake.list's rglob raises FileNotFoundError on one)."""
    return {os.path.relpath(os.path.join(folder, name), lake.uri)
            for folder, _, names in os.walk(lake.uri) for name in names}


SLOW_RETAIN = """
import sys, time
from recsys.core.data.lake import Lake
real = Lake.delete
def slow(self, key):
    real(self, key)
    time.sleep(0.01)
Lake.delete = slow
from recsys.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_retain_killed_partway_deleted_only_expired_objects_and_the_next_run_deletes_the_rest(
        lake, tmp_path):
    going, kept = history(lake)
    env = {**os.environ, "RECSYS_RETENTION_RAW_DAYS": "7", "RECSYS_PUSHGATEWAY_URL": ""}
    # each delete made 10 ms slow, so that the kill lands partway (300 deletions: ~3 s)
    process = subprocess.Popen([sys.executable, "-c", SLOW_RETAIN, "lake", "retain",
                                "--lake", lake.uri], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while len(going - files(lake)) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    left = set(lake.list(""))
    assert kept <= left  # nothing outside the policy went
    assert 20 <= len(going - left) < len(going), "the kill did not land partway"

    report = retain(lake, POLICY, today=TODAY)
    assert set(lake.list("")) == kept
    assert report["zones"]["raw"]["objects"] == len(going & left)


@pytest.fixture
def tmpfs_lake(tmp_path):
    with tmpfs(tmp_path / "lake", "16m") as folder:
        yield folder


@pytest.mark.integration
def test_a_read_only_lake_fails_retention_naming_the_file_and_deletes_nothing(tmpfs_lake):
    lake = Lake(str(tmpfs_lake))
    going, kept = history(lake, expired=range(10, 13))
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs_lake)], check=True)
    with pytest.raises(LakeError, match=f"cannot delete {tmpfs_lake}/raw/events/event_date="
                                        ".*Read-only file system"):
        retain(lake, POLICY, today=TODAY)
    assert set(lake.list("")) == going | kept
    subprocess.run(["mount", "-o", "remount,rw", str(tmpfs_lake)], check=True)
    retain(lake, POLICY, today=TODAY)
    assert set(lake.list("")) == kept


@pytest.fixture
def frozen_lake(frozen_s3, monkeypatch):  # noqa: F811 - the fixture imported above
    """(an S3 lake on a moto server of its own, the server process), the lake's S3 bounds
    made small (the shipped ones apply the same way, in about 2 minutes)."""
    import boto3

    url, server = frozen_s3
    monkeypatch.setattr(lake_module, "S3_CLIENT_BOUNDS", {
        "connect_timeout": 1, "read_timeout": 1, "retries": {"mode": "standard",
                                                             "max_attempts": 1}})
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=url).create_bucket(Bucket=bucket)
    return Lake(f"s3://{bucket}/shop", s3_endpoint_url=url), server


@pytest.mark.integration
@pytest.mark.slow
def test_an_s3_endpoint_frozen_during_retention_fails_it_naming_the_endpoint(frozen_lake):
    lake, server = frozen_lake
    going, kept = history(lake, expired=range(10, 14))
    url = lake.s3_endpoint_url

    freeze_process(server.pid)  # before the run: the listing waits its bound
    started = time.monotonic()
    try:
        with pytest.raises(LakeError) as failure:
            retain(lake, POLICY, today=TODAY)
    finally:
        server.send_signal(signal.SIGCONT)
    assert time.monotonic() - started < 20
    assert "cannot list s3://" in str(failure.value) and url in str(failure.value)
    assert set(lake.list("")) == going | kept

    deleted = []
    real_delete = lake.delete

    def freeze_after_two(key):  # frozen during the run: after two deletions
        if len(deleted) == 2:
            freeze_process(server.pid)
        real_delete(key)
        deleted.append(key)

    lake.delete = freeze_after_two
    try:
        with pytest.raises(LakeError) as failure:
            retain(lake, POLICY, today=TODAY)
    finally:
        server.send_signal(signal.SIGCONT)
    assert "cannot delete s3://" in str(failure.value) and url in str(failure.value)
    left = set(lake.list(""))
    assert kept <= left and len(going - left) >= 2
    lake.delete = real_delete
    retain(lake, POLICY, today=TODAY)
    assert set(lake.list("")) == kept
