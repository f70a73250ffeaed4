"""The stream workers' supervisor: restarts with back-off, keeps the worker object, gives up
after repeated failures."""
import threading

from recsys.streaming.supervisor import Supervisor


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
    status = supervisor.status()["sink"]
    assert status["running"] and status["restarts"] == 2 and status["failures_in_a_row"] == 2
    assert status["last_error"] == "RuntimeError: lake unreachable (run 2)"
    assert worker.buffer == [1, 2, 3]  # one object across restarts: its buffer survives
    assert supervisor.healthy()
    supervisor.stop()
    assert not supervisor.failed.is_set()


def test_repeated_failures_make_the_supervisor_give_up_and_stop_the_others():
    broken, healthy = FlakyWorker(failures=100), FlakyWorker(failures=0)
    supervisor = Supervisor({"processor": broken.run, "sink": healthy.run}, max_failures=3,
                            first_backoff=0.01)
    supervisor.start()
    assert supervisor.failed.wait(5)
    supervisor.stop(timeout=5)
    assert broken.runs == 3 and not supervisor.healthy()
    assert supervisor.status()["processor"]["failures_in_a_row"] == 3
    assert supervisor.status()["sink"]["running"] is False  # asked to stop with the rest
