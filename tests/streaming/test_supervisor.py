"""The stream workers' supervisor: restarts with back-off, keeps the worker object, gives up
after repeated failures."""
import errno
import threading

import pytest
import redis

from recsys.core.errors import LakeError
from recsys.streaming.bus import BusUnavailable
from recsys.streaming.supervisor import Supervisor, is_transient
from tests.streaming.event_path import wait_until


class FlakyWorker:
    """Fails `failures` times, then runs until asked to stop; keeps what it buffered."""

    def __init__(self, failures: int):
        self.failures = failures
        self.buffer: list[int] = []
        self.runs = 0
        self.running = threading.Event()

    def run(self, stop):
        self.runs += 1
        self.buffer.append(self.runs)
        if self.runs <= self.failures:
            raise RuntimeError(f"lake unreachable (run {self.runs})")
        self.running.set()
        while not stop():
            threading.Event().wait(0.01)


def test_a_failing_worker_is_restarted_on_the_same_object_until_it_runs():
    worker = FlakyWorker(failures=2)
    supervisor = Supervisor({"sink": worker.run}, max_failures=5, first_backoff=0.01)
    supervisor.start()
    assert worker.running.wait(5)
    assert wait_until(lambda: supervisor.status()["sink"]["state"] == "running")
    status = supervisor.status()["sink"]
    assert status["running"] and status["restarts"] == 2
    assert status["failures_in_a_row"] == 0  # a poll went through: its counts start over
    assert status["last_error"] == "RuntimeError: lake unreachable (run 2)"
    assert worker.buffer == [1, 2, 3]  # one object across restarts: its buffer survives
    assert supervisor.healthy()
    supervisor.stop()
    assert not supervisor.failed.is_set()


def test_a_worker_failing_with_a_bug_is_stopped_alone_and_reported():
    broken, healthy = FlakyWorker(failures=100), FlakyWorker(failures=0)
    supervisor = Supervisor({"processor": broken.run, "sink": healthy.run}, max_failures=3,
                            first_backoff=0.01)
    supervisor.start()
    assert supervisor.failed.wait(5)
    assert broken.runs == 3 and not supervisor.healthy()
    status = supervisor.status()
    assert status["processor"]["state"] == "stopped"
    assert status["processor"]["last_error_transient"] is False
    assert status["sink"]["state"] == "running"  # the others keep going
    assert supervisor.problems() == ["worker processor stopped after 3 failures in a row that "
                                     "retries do not mend: RuntimeError: lake unreachable "
                                     "(run 3)"]
    supervisor.stop(timeout=5)


class Outage:
    """Fails with `error` `failures` times, then runs until asked to stop."""

    def __init__(self, failures: int, error: Exception):
        self.failures, self.error, self.runs = failures, error, 0
        self.running = threading.Event()

    def run(self, stop):
        self.runs += 1
        if self.runs <= self.failures:
            raise self.error
        self.running.set()
        while not stop():
            threading.Event().wait(0.01)


@pytest.mark.parametrize("error", [
    BusUnavailable("cannot read recsys:events: Connection refused"),
    LakeError("cannot write s3://lake/raw/events/x.parquet"),
    OSError(errno.ENOSPC, "No space left on device"),
    OSError(errno.EROFS, "Read-only file system"),
    redis.ConnectionError("Connection closed by server."),
    redis.TimeoutError("Timeout reading from socket"),
], ids=lambda e: type(e).__name__)
def test_passing_failures_are_retried_as_long_as_they_last(error):
    worker = Outage(failures=40, error=error)  # 8 times the number that stops a bug
    supervisor = Supervisor({"sink": worker.run}, max_failures=5, first_backoff=0.001,
                            max_backoff=0.002)
    supervisor.start()
    try:
        assert worker.running.wait(10)
        assert wait_until(supervisor.healthy)
        assert worker.runs == 41 and not supervisor.failed.is_set()
        assert supervisor.status()["sink"]["restarts"] == 40
        assert supervisor.status()["sink"]["last_error_transient"] is True
    finally:
        supervisor.stop(timeout=5)


def test_the_back_off_doubles_up_to_its_cap_and_never_overflows():
    supervisor = Supervisor({}, first_backoff=1.0, max_backoff=30.0)
    assert [supervisor.backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert supervisor.backoff(100_000) == 30.0  # days of outage: still 30 s


def test_only_bugs_count_as_permanent():
    assert not is_transient(TypeError("unsupported operand"))
    assert not is_transient(KeyError("event_id"))
    assert is_transient(BusUnavailable("full")) and is_transient(PermissionError("lake"))


def test_a_worker_is_retrying_until_a_poll_goes_through_after_its_restart():
    polls = threading.Semaphore(0)

    def run(stop):  # restarted, then stuck before its first poll completes
        if not hasattr(run, "failed"):
            run.failed = True
            raise OSError(28, "No space left on device")
        stop()
        polls.acquire()  # the first poll hangs until released
        while not stop():
            threading.Event().wait(0.01)

    supervisor = Supervisor({"sink": run}, first_backoff=0.001)
    supervisor.start()
    try:
        assert wait_until(lambda: supervisor.states["sink"].polls == 1)
        assert supervisor.status()["sink"]["state"] == "retrying" and not supervisor.healthy()
        assert supervisor.problems() == ["worker sink retrying (1 failures in a row): OSError: "
                                         "[Errno 28] No space left on device"]
        polls.release()
        assert wait_until(supervisor.healthy)
        assert supervisor.status()["sink"]["failures_in_a_row"] == 0
    finally:
        polls.release()
        supervisor.stop(timeout=5)
