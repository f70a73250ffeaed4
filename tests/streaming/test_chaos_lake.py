"""Chaos on the lake's disk under the whole event path (`tests/streaming/event_path.py`): a
full disk (a 2 MB tmpfs filled up) and a read-only one (the tmpfs remounted read-only). The
lake sink and the quarantine sink retry for as long as it lasts, the collector keeps
answering 202, `/health` says which worker is retrying and why; once the disk takes writes
again every acknowledged event is in the lake (refused ones in quarantine) once.

Mounting needs root (the CI runs as root); where mounting is not allowed the tests are
skipped, saying so."""
import subprocess
from pathlib import Path

import pytest

from recsys.tools.local_services import redis_server
from tests.streaming.event_path import EventPath, events, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs of the test's own, unmounted afterwards."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}): the full and "
                    f"read-only disk cases need one")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
    return filler


def remount(folder: Path, option: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{option}", str(folder)], check=True)


def refused(prefix: str, count: int) -> list[dict]:
    return [e | {"event_type": "teleport"} for e in events(prefix, count)]


def run_lake_outage(path: EventPath, outage, recovery, error: str) -> None:
    """Events before, during and after an outage of the lake's disk; the sinks retry."""
    assert path.post(events("before", 40)).status_code == 202
    assert wait_until(path.all_landed)
    outage()
    assert path.post(events("during", 40) + refused("bad", 3)).status_code == 422
    failures = path.worker_failures
    assert wait_until(lambda: failures()["sink"] > 6 and failures()["quarantine"] > 6)
    health = path.client.get("/health")
    assert health.status_code == 503 and health.json()["status"] == "degraded"
    sink = health.json()["workers"]["sink"]
    assert sink["state"] == "retrying" and error in sink["last_error"]
    assert any(r.startswith("worker sink retrying: ") and error in r
               for r in health.json()["reasons"])
    assert path.post(events("still", 40)).status_code == 202  # the collector answers
    assert not path.workers.supervisor.failed.is_set()

    recovery()
    path.assert_nothing_lost_or_doubled()
    assert len(path.acknowledged) == 120 and len(path.refused) == 3
    assert wait_until(lambda: path.client.get("/health").json()["status"] == "ok")


def test_a_full_lake_disk_is_retried_until_it_has_room(small_disk, tmp_path):
    with redis_server(tmp_path / "redis") as server:
        path = EventPath(server, tmp_path / "state", lake_uri=str(small_disk)).start()
        filler: list[Path] = []
        try:
            run_lake_outage(path, lambda: filler.append(fill(small_disk)),
                            lambda: filler[0].unlink(), "No space left on device")
        finally:
            path.close()


def test_a_read_only_lake_disk_is_retried_until_it_is_writable(small_disk, tmp_path):
    with redis_server(tmp_path / "redis") as server:
        path = EventPath(server, tmp_path / "state", lake_uri=str(small_disk)).start()
        try:
            run_lake_outage(path, lambda: remount(small_disk, "ro"),
                            lambda: remount(small_disk, "rw"), "Read-only file system")
        finally:
            path.close()
