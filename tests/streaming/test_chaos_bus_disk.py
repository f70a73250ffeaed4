"""Chaos on the bus Redis's own disk (`tests/streaming/event_path.py`), on a redis-server of
the test's own from the shipped durable configuration (infra/redis/bus.conf: appendonly,
appendfsync always, aof-load-truncated left at its default, yes) with its AOF on a 2 MB
tmpfs: full, read-only, and a damaged AOF.

What Redis 7.0 does, found by these tests:
- AOF disk full: with appendfsync always a failed AOF write is not answered with an error
  (MISCONF is for the other fsync policies): Redis truncates the partial write away, logs
  "Can't recover from AOF write error when the AOF fsync policy is 'always'" and exits 1,
  before replying. The request under way gets `stored: "unknown"` (and was not stored), the
  next ones `stored: 0`; once there is room and Redis is started again it holds every
  acknowledged event, and the retried batch is stored once.
- Read-only AOF disk: Linux refuses to remount read-only a file system with a file open for
  writing (Redis's AOF), so the disk turns read-only under a stopped Redis (a node restart):
  Redis refuses to start ("Can't open the append-only file ... Read-only file system"), the
  collector answers 503 `stored: 0` until the disk is writable and Redis is started.
- Damaged AOF: a tail cut mid-record (a write under way when the machine stopped: never
  acknowledged, appendfsync always replies after the fsync) is dropped at start
  (aof-load-truncated), the whole transaction of that publish with it, so its retry is
  stored once. Garbage in the middle: Redis refuses to start ("Bad file format"); the
  operator's step, `redis-check-aof --fix <dir>/appendonly/appendonly.aof.manifest`, cuts
  the file at the damage - the events acknowledged after it are lost (restore a backup of
  the volume instead if they matter).

Mounting needs root (the CI runs as root); where mounting is not allowed the tests are
skipped, saying so."""
import subprocess
from pathlib import Path

import pytest
import redis

from recsys.tools.local_services import BUS_CONFIG, RedisServer
from tests.streaming.event_path import EventPath, events, wait_until
from tests.streaming.test_chaos_bus import stream_ids
from tests.streaming.test_chaos_lake import fill, remount, small_disk  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.fixture
def bus_on_small_disk(small_disk):  # noqa: F811
    server = RedisServer(small_disk)
    server.start()
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.crash()


def incr_aof(server: RedisServer) -> Path:
    return server.folder / "appendonly" / "appendonly.aof.1.incr.aof"


def refused_start(server: RedisServer) -> str:
    """Start redis-server as `server.start()` does and return its log; it must exit 1."""
    started = subprocess.run(["redis-server", str(BUS_CONFIG), "--port", str(server.port),
                              "--dir", str(server.folder)],
                             capture_output=True, text=True, timeout=30)
    assert started.returncode == 1, started.stdout[-2000:]
    return started.stdout


def assert_bus_down(path: EventPath) -> None:
    down = path.post(events("down", 5))
    assert down.status_code == 503 and down.json()["stored"] == 0
    assert down.headers["Retry-After"] == "5"
    health = path.client.get("/health")
    assert health.status_code == 503 and health.json()["status"] == "degraded"
    assert health.json()["reasons"][0].startswith("bus down")


def test_a_full_aof_disk_stops_redis_and_nothing_unwritten_is_acknowledged(
        bus_on_small_disk, tmp_path):
    server = bus_on_small_disk
    path = EventPath(server, tmp_path / "state", with_workers=False)
    assert path.post(events("before", 20)).status_code == 202
    filler = fill(server.folder)

    unanswered = []
    for n in range(50):  # the AOF's last page may still take a batch or two
        batch = events(f"full{n}-", 20)
        answer = path.post(batch)
        if answer.status_code != 202:
            break
    assert answer.status_code == 503 and answer.json()["stored"] == "unknown"
    unanswered.append(batch)
    assert server.process.wait(timeout=10) == 1  # Redis exited: it cannot take back a write
    assert_bus_down(path)

    filler.unlink()
    server.start()  # the same AOF, now with room
    kept = set(stream_ids(path))
    assert kept == path.acknowledged  # every 202 was on disk, the unanswered batch was not
    assert not kept & {e["event_id"] for e in unanswered[0]}
    retried = path.post_until_acknowledged(unanswered[0])[-1]
    assert retried.json()["accepted"] == 20
    assert path.post(events("after", 20)).status_code == 202
    ids = stream_ids(path)
    assert len(ids) == len(set(ids)) and set(ids) == path.acknowledged
    assert wait_until(lambda: path.client.get("/health").json()["status"] == "ok")


def test_a_read_only_aof_disk_keeps_redis_down_until_it_is_writable(
        bus_on_small_disk, tmp_path):
    server = bus_on_small_disk
    path = EventPath(server, tmp_path / "state", with_workers=False)
    assert path.post(events("before", 30)).status_code == 202

    server.crash()  # the node stops; its disk comes back read-only
    remount(server.folder, "ro")
    log = refused_start(server)
    assert "Can't open the append-only file" in log and "Read-only file system" in log
    assert_bus_down(path)

    remount(server.folder, "rw")
    server.start()
    assert set(stream_ids(path)) == path.acknowledged
    assert path.post(events("after", 30)).status_code == 202
    ids = stream_ids(path)
    assert len(ids) == 60 and set(ids) == path.acknowledged


def test_an_aof_cut_mid_record_drops_only_the_unacknowledged_tail(bus_on_small_disk, tmp_path):
    server = bus_on_small_disk
    path = EventPath(server, tmp_path / "state", with_workers=False)
    assert path.post(events("kept", 20)).status_code == 202
    aof = incr_aof(server)
    kept_size = aof.stat().st_size
    cut = events("cut", 20)
    assert path.post(cut).status_code == 202
    server.crash()
    # the machine stopped while this publish was being written: its reply was never sent
    path.acknowledged -= {e["event_id"] for e in cut}
    with aof.open("r+b") as file:
        file.truncate(kept_size + (aof.stat().st_size - kept_size) // 2)

    server.start()  # aof-load-truncated: the cut transaction is dropped whole
    assert sorted(stream_ids(path)) == sorted(path.acknowledged)
    retried = path.post(cut)  # the client's retry of the unanswered batch
    assert retried.status_code == 202 and retried.json()["accepted"] == 20  # not duplicates
    ids = stream_ids(path)
    assert len(ids) == 40 and set(ids) == path.acknowledged


def test_garbage_in_the_aof_keeps_redis_down_until_redis_check_aof_fixes_it(
        bus_on_small_disk, tmp_path):
    server = bus_on_small_disk
    path = EventPath(server, tmp_path / "state", with_workers=False)
    before = events("before", 20)
    assert path.post(before).status_code == 202
    aof = incr_aof(server)
    damage_at = aof.stat().st_size
    assert path.post(events("after", 20)).status_code == 202
    server.crash()
    with aof.open("r+b") as file:
        file.seek(damage_at)  # over the start of the second publish's record
        file.write(b"garbage\r\n")

    log = refused_start(server)
    assert "Bad file format reading the append only file" in log
    assert "redis-check-aof --fix" in log
    assert_bus_down(path)

    manifest = server.folder / "appendonly" / "appendonly.aof.manifest"
    fixed = subprocess.run(["redis-check-aof", "--fix", str(manifest)], input="y\n",
                           capture_output=True, text=True, timeout=30)
    assert fixed.returncode == 0 and "Successfully truncated" in fixed.stdout, fixed.stdout
    server.start()
    # the repair cuts the file at the damage: what was acknowledged after it is gone
    assert sorted(stream_ids(path)) == sorted(e["event_id"] for e in before)
    assert redis.Redis.from_url(server.url).exists(
        f"{path.bus.seen_prefix}after0") == 0  # so a resend is stored, not a "duplicate"
    assert path.post(events("after", 20)).json()["accepted"] == 20
