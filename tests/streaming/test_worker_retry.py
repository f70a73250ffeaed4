"""A worker restarted after a passing failure (under `recsys stream up`'s supervisor) picks
up where it was: the processor takes the batch the failure interrupted again at once, and a
sink whose writes fail reads nothing more until its buffer is written."""
import time

import pytest
import redis

from recsys.streaming.bus import BufferedGroupWorker, Message
from tests.streaming.test_processor import event, processor  # noqa: F401


class Failing:
    """An online store that is down `times` times, then takes the rows."""

    def __init__(self, push, times: int):
        self.push, self.times = push, times

    def __call__(self, frame):
        if self.times:
            self.times -= 1
            raise redis.ConnectionError("Connection refused")
        return self.push(frame)


@pytest.mark.integration
def test_the_processor_retries_the_interrupted_batch_first(processor):  # noqa: F811
    now = int(time.time() * 1000)
    processor.bus.publish([event(1, "alice", "view", now - 1000),
                           event(2, "bob", "view", now - 900)])
    processor.push = Failing(processor.push, times=1)
    with pytest.raises(redis.ConnectionError):
        processor.poll()
    assert processor.bus.pending(processor.config.group) == 2  # read, not acknowledged
    assert processor.poll() == 2  # the same batch again, not only after its redelivery
    assert set(processor.pushed.rows) == {"alice", "bob"}
    assert processor.bus.pending(processor.config.group) == 0


class Reader:
    def __init__(self):
        self.reads = 0

    def read(self):
        self.reads += 1
        return [Message(f"{self.reads}-{i}", {"n": i}) for i in range(10)]


class DiskFull(BufferedGroupWorker):
    def __init__(self):
        self.reader, self.max_buffered, self.max_seconds = Reader(), 10, 3600.0
        self._start_buffer()

    def flush(self) -> int:
        raise OSError(28, "No space left on device")


def test_a_sink_whose_writes_fail_reads_nothing_more():
    sink = DiskFull()
    for _ in range(50):  # the supervisor's retries of a long outage
        with pytest.raises(OSError):
            sink.poll()
    assert sink.reader.reads == 1 and len(sink._buffer) == 10  # bounded, kept
