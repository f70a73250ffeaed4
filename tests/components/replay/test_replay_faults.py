"""Quarantine replay under faults: two replays racing (one holds the lake's replay lock, the
other fails at once naming it; every event once in the raw zone), a stale lock taken over,
the lake's disk full or read-only (tmpfs, needs root), an S3 endpoint that stops answering
(a moto server SIGSTOPped)."""
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import threading
import uuid

import pandas as pd
import pyarrow.parquet as pq
import pytest

import recsys.components.replay.lock as lock_module
import recsys.components.replay.replay as replay_module
from recsys.cli.main import main
from recsys.components.replay.lock import LOCK_KEY, ReplayBusy, replay_lock
from recsys.components.replay.replay import REPLAYED_SCHEMA, REPLAYED_ZONE, ReplayRules, replay
from recsys.core.data import lake as lake_module
from recsys.core.data.event_store import RAW_ZONE, read_event_files
from recsys.core.data.lake import Lake
from recsys.core.data.quarantine import write_quarantine
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from recsys.core.errors import LakeError
from recsys.streaming.quarantine_sink import quarantine_frame
from recsys.tools.local_services import freeze_process
from tests.core.data.test_lake_s3_frozen import frozen_s3  # noqa: F401 - a fixture
from tests.lake_disks import remount, tmpfs

NOW = pd.Timestamp("2026-11-01T12:00:00Z")
T0 = int(pd.Timestamp("2026-10-30T10:00:00Z").value // 1_000_000)
TODAY = ReplayRules(now=NOW)


def dead_letters(numbers, note_bytes: int = 0, reason: str = "event_type: an older collector"):
    """Dead letters that pass today's rules (`note_bytes` random bytes, as hex, beyond the
    schema: kept in the raw zone's `extra`)."""
    rng = random.Random(7)
    records = []
    for n in numbers:
        properties = {"product_id": f"p{n}"}
        if note_bytes:
            properties["note"] = rng.randbytes(note_bytes).hex()
        records.append({"reason": reason, "errors": [], "received_at": T0 + 60_000, "raw": {
            "event_id": f"e{n}", "user_id": f"u{n}", "event_type": "view", "timestamp": T0 + n,
            "properties": properties}})
    return quarantine_frame(records)


def raw_ids(lake: Lake) -> list[str]:
    return read_event_files(lake, lake.list(RAW_ZONE), RAW_EVENT_SCHEMA,
                            ["event_id"]).column("event_id").to_pylist()


def recorded(lake: Lake) -> int:
    return len(read_event_files(lake, lake.list(REPLAYED_ZONE), REPLAYED_SCHEMA))


# --- two replays racing -------------------------------------------------------------------

def test_two_replays_racing_one_runs_the_other_fails_at_once_and_every_event_is_once_in_raw(
        tmp_path, monkeypatch):
    """Two replays with other filters (their new events differ, so their raw files would
    differ): each waits for the other at its raw write, so without the lock both would
    have read the partition before either wrote and every event of both would be doubled."""
    root = tmp_path / "lake"
    write_quarantine(Lake(str(root)), dead_letters(range(0, 10)))
    write_quarantine(Lake(str(root)), dead_letters(range(10, 20), reason="price: older"))
    at_write = threading.Barrier(2)
    real_append = replay_module.append_partitioned

    def append_after_the_other_read(lake, zone, *args, **kwargs):
        if zone == RAW_ZONE:
            try:
                at_write.wait(timeout=2)  # the other replay (if running) has read by now
            except threading.BrokenBarrierError:
                pass
        return real_append(lake, zone, *args, **kwargs)

    monkeypatch.setattr(replay_module, "append_partitioned", append_after_the_other_read)
    start = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def run(name, reasons):
        start.wait(timeout=10)
        try:
            outcomes[name] = replay(Lake(str(root)), reasons, rules=TODAY)
        except Exception as exc:  # noqa: BLE001 - the outcome is the assertion
            outcomes[name] = exc

    threads = [threading.Thread(target=run, args=("all", ())),
               threading.Thread(target=run, args=("older", ("collector: price",)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    ids = raw_ids(Lake(str(root)))
    assert len(ids) == len(set(ids)), sorted(ids)  # no event doubled
    busy = [o for o in outcomes.values() if isinstance(o, ReplayBusy)]
    done = [o for o in outcomes.values() if not isinstance(o, Exception)]
    assert len(busy) == 1 and len(done) == 1, outcomes
    assert f"pid {os.getpid()}" in str(busy[0]) and "replay.lock" in str(busy[0])
    assert len(ids) == done[0].written
    assert not (root / LOCK_KEY).exists()  # released at the end

    # the one refused runs afterwards and adds only what is new
    monkeypatch.setattr(replay_module, "append_partitioned", real_append)
    replay(Lake(str(root)), rules=TODAY)
    ids = raw_ids(Lake(str(root)))
    assert sorted(ids) == sorted(f"e{n}" for n in range(20))


def test_a_second_replay_fails_naming_the_holder_and_a_dry_run_is_not_held(tmp_path, capsys):
    lake = Lake(str(tmp_path / "lake"))
    write_quarantine(lake, dead_letters(range(3)))
    with replay_lock(lake) as holder:
        with pytest.raises(ReplayBusy, match=f"pid {os.getpid()} on {holder['host']} since "):
            replay(lake, rules=TODAY)
        assert main(["quarantine", "replay", "--lake", lake.uri]) == 2  # the CLI: refused
        assert replay(lake, dry_run=True, rules=TODAY).replayed == 3  # writes nothing
        assert raw_ids(lake) == []
    assert replay(lake, rules=TODAY).written == 3


def test_a_lock_whose_process_is_gone_is_taken_over_with_a_warning(tmp_path, caplog):
    lake = Lake(str(tmp_path / "lake"))
    write_quarantine(lake, dead_letters(range(3)))
    ended = subprocess.Popen(["true"])  # a process that existed and ended
    ended.wait()
    dead_pid = ended.pid
    stale = {"host": socket.gethostname(), "pid": dead_pid, "process_start": 1,
             "taken_at": pd.Timestamp.now().timestamp(), "token": "old"}
    (tmp_path / "lake" / LOCK_KEY).write_bytes(json.dumps(stale).encode())

    assert replay(lake, rules=TODAY).written == 3
    assert f"taking over the stale lock {tmp_path / 'lake' / LOCK_KEY} of pid {dead_pid}" \
        in caplog.text and "is gone" in caplog.text
    assert not (tmp_path / "lake" / LOCK_KEY).exists()


def test_a_live_lock_is_kept_until_it_is_older_than_the_bound(tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    live = {"host": socket.gethostname(), "pid": os.getpid(),
            "process_start": lock_module._process_start(os.getpid()),
            "taken_at": pd.Timestamp.now().timestamp() - 100, "token": "other"}
    (tmp_path / "lake" / "quarantine").mkdir(parents=True)
    (tmp_path / "lake" / LOCK_KEY).write_bytes(json.dumps(live).encode())
    with pytest.raises(ReplayBusy):
        with replay_lock(lake):
            pass
    with replay_lock(lake, max_age=50) as mine:  # older than the bound: taken over
        assert json.loads((tmp_path / "lake" / LOCK_KEY).read_bytes())["token"] == \
            mine["token"]
    # an unreadable lock file holds for a minute (whoever wrote it), then it is stale
    (tmp_path / "lake" / LOCK_KEY).write_bytes(b"")
    with pytest.raises(ReplayBusy, match="unreadable"):
        with replay_lock(lake):
            pass
    old = pd.Timestamp.now().timestamp() - 120
    os.utime(tmp_path / "lake" / LOCK_KEY, (old, old))
    with replay_lock(lake):
        pass


@pytest.mark.integration
def test_two_replays_on_an_s3_lake_one_holds_the_conditional_put_lock(s3_lake):
    write_quarantine(s3_lake, dead_letters(range(3)))
    with replay_lock(s3_lake) as holder:
        with pytest.raises(ReplayBusy, match=f"pid {holder['pid']}"):
            replay(s3_lake, rules=TODAY)
    assert not s3_lake.exists(LOCK_KEY)
    # a stale lock (older than the bound) is replaced by compare-and-swap on its ETag
    s3_lake.write_bytes(LOCK_KEY, json.dumps({"host": "elsewhere", "pid": 1,
                                              "taken_at": 0, "token": "old"}).encode())
    assert replay(s3_lake, rules=TODAY).written == 3
    assert not s3_lake.exists(LOCK_KEY)


# --- the lake's disk full or read-only (a tmpfs: root) ------------------------------------

@pytest.fixture
def tmpfs_lake(tmp_path):
    """A 64 MiB tmpfs for the lake; yields its folder, unmounted afterwards."""
    with tmpfs(tmp_path / "lake", "64m") as folder:
        yield folder



def no_partial_files(folder) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert not path.name.startswith(".tmp-"), path
            if path.suffix == ".parquet":
                pq.read_metadata(path)


@pytest.mark.integration
def test_a_full_disk_fails_the_replay_naming_the_file_and_a_rerun_replays_everything_once(
        tmpfs_lake):
    lake = Lake(str(tmpfs_lake))
    write_quarantine(lake, dead_letters(range(200), note_bytes=1900))  # ~0.8 MB of raw
    used = os.statvfs(tmpfs_lake)
    used_kib = (used.f_blocks - used.f_bfree) * used.f_frsize // 1024
    remount(tmpfs_lake, f"size={used_kib + 256}k")  # room for the lock, not the raw file

    with pytest.raises(LakeError) as failure:
        replay(lake, rules=TODAY)
    assert f"cannot write {tmpfs_lake}/{RAW_ZONE}/event_date=" in str(failure.value)
    assert "No space left on device" in str(failure.value)
    no_partial_files(tmpfs_lake)
    assert raw_ids(lake) == [] and lake.list(REPLAYED_ZONE) == []
    assert not (tmpfs_lake / LOCK_KEY).exists()

    remount(tmpfs_lake, "size=64m")  # the operator makes room
    summary = replay(lake, rules=TODAY)
    assert (summary.replayed, summary.written) == (200, 200)
    assert sorted(raw_ids(lake)) == sorted(f"e{n}" for n in range(200))
    assert recorded(lake) == 200
    no_partial_files(tmpfs_lake)


@pytest.mark.integration
def test_a_read_only_lake_fails_the_replay_at_its_lock_and_a_rerun_replays_everything(
        tmpfs_lake):
    lake = Lake(str(tmpfs_lake))
    write_quarantine(lake, dead_letters(range(20)))
    before = lake.describe("")
    remount(tmpfs_lake, "ro")
    with pytest.raises(LakeError, match=f"cannot create the replay lock {tmpfs_lake}/{LOCK_KEY}"
                                        ".*Read-only file system"):
        replay(lake, rules=TODAY)
    assert lake.describe("") == before  # nothing written, nothing set aside
    assert replay(lake, dry_run=True, rules=TODAY).replayed == 20  # a dry run still reads

    remount(tmpfs_lake, "rw")
    assert replay(lake, rules=TODAY).written == 20
    assert sorted(raw_ids(lake)) == sorted(f"e{n}" for n in range(20))
    assert recorded(lake) == 20


# --- an S3 endpoint that stops answering --------------------------------------------------

def _replay_frozen_mid_run(uri, url, server_pid, report):
    """In a forked child (a replay process of its own): freeze the endpoint just before
    the raw write, replay, and write what it raised to `report`."""
    real_append = replay_module.append_partitioned

    def freeze_then_append(lake, zone, *args, **kwargs):
        if zone == RAW_ZONE:
            freeze_process(server_pid)
        return real_append(lake, zone, *args, **kwargs)

    replay_module.append_partitioned = freeze_then_append
    try:
        replay(Lake(uri, s3_endpoint_url=url), rules=TODAY)
        outcome = "finished"
    except Exception as exc:  # noqa: BLE001 - reported to the test
        outcome = f"{type(exc).__name__}: {exc}"
    with open(report, "w") as handle:
        handle.write(outcome)


@pytest.mark.integration
def test_an_s3_endpoint_frozen_mid_replay_fails_it_and_the_next_replay_lands_everything_once(
        frozen_s3, tmp_path, monkeypatch, caplog):  # noqa: F811 - the fixture imported above
    import boto3

    url, server = frozen_s3
    monkeypatch.setattr(lake_module, "S3_CLIENT_BOUNDS", {   # the shipped bounds, smaller
        "connect_timeout": 1, "read_timeout": 1, "retries": {"mode": "standard",
                                                             "max_attempts": 1}})
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=url).create_bucket(Bucket=bucket)
    uri = f"s3://{bucket}/shop"
    lake = Lake(uri, s3_endpoint_url=url)
    write_quarantine(lake, dead_letters(range(30)))

    report = tmp_path / "outcome"
    child = multiprocessing.get_context("fork").Process(
        target=_replay_frozen_mid_run, args=(uri, url, server.pid, report))
    child.start()
    child.join(timeout=60)
    finished = not child.is_alive()
    server.send_signal(signal.SIGCONT)
    assert finished, "the replay waited on a frozen S3 endpoint without bound"
    outcome = report.read_text()
    # the raw zone's partition listed or written: within the bounds, naming the endpoint
    assert outcome.startswith("LakeError: cannot ") and url in outcome, outcome
    assert f"s3://{bucket}/shop/{RAW_ZONE}/event_date=" in outcome
    assert raw_ids(lake) == [] and lake.list(REPLAYED_ZONE) == []
    assert lake.exists(LOCK_KEY)  # its release failed too (frozen); its process is gone

    summary = replay(Lake(uri, s3_endpoint_url=url), rules=TODAY)
    assert (summary.replayed, summary.written) == (30, 30)
    assert sorted(raw_ids(lake)) == sorted(f"e{n}" for n in range(30))
    assert "took over the stale lock" in caplog.text and "is gone" in caplog.text
    assert not lake.exists(LOCK_KEY)
