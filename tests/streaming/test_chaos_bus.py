"""Chaos on the bus Redis under the whole event path (collector + supervised processor, lake
sink and quarantine sink, `tests/streaming/event_path.py`), each on a redis-server of the
test's own from the shipped durable configuration: stopped, frozen (SIGSTOP), restarted
without durability, made volatile by CONFIG SET, killed with SIGKILL mid-write. Each case
counts: every event the collector acknowledged ends in the lake (or, refused, in
quarantine) once, an answer saying nothing was stored is true, and the collector answers
throughout."""
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
import redis

from recsys.benchmarks.stream_load import worker_env
from recsys.core.data.event_store import RAW_ZONE
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from recsys.core.settings import Settings
from recsys.streaming.bus import BusUnavailable
from recsys.streaming.lake_sink import LakeSink, SinkConfig
from recsys.streaming.redis_bus import RedisStreamBus
from recsys.streaming.runtime import build_bus, build_collector_bus, build_sink
from recsys.tools.local_services import freeze_process, redis_server
from tests.conftest import REPO
from tests.streaming.event_path import EventPath, events, wait_until

pytestmark = pytest.mark.integration
OLD_GIVE_UP = 5
"""Failures in a row after which `stream up` used to stop everything (about 15 s)."""


@pytest.fixture
def server(tmp_path):
    with redis_server(tmp_path / "redis") as running:
        yield running


def stream_ids(path: EventPath) -> list[str]:
    return [fields[b"e"].split(b'"event_id":"')[1].split(b'"')[0].decode()
            for _, fields in path.bus.client.xrange(path.bus.stream)]


def test_workers_outlast_a_bus_outage_and_the_collector_answers_503_then_202(server, tmp_path):
    path = EventPath(server, tmp_path / "state").start()
    try:
        assert path.post(events("before", 50)).status_code == 202
        assert wait_until(path.all_landed)

        server.crash()
        during = path.post(events("during", 10))
        assert during.status_code == 503 and during.json()["stored"] == 0
        assert during.headers["Retry-After"] == "5"
        # every worker keeps retrying past the point where stream up used to give up
        assert wait_until(lambda: min(path.worker_failures().values()) > OLD_GIVE_UP + 3)
        health = path.client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "degraded"
        assert health.json()["reasons"][0].startswith("bus down")
        assert wait_until(lambda: any(  # polled: a retry may be under way at one instant
            r.startswith("worker sink retrying: BusUnavailable")
            for r in path.client.get("/health").json()["reasons"]))
        assert health.json()["workers"]["sink"]["last_error_transient"] is True
        assert not path.workers.supervisor.failed.is_set()
        assert path.post(events("during", 10)).status_code == 503

        server.start()
        assert path.post(events("during", 10)).status_code == 202  # at once, same ids
        assert path.post(events("after", 50)).status_code == 202
        path.assert_nothing_lost_or_doubled()
        assert len(path.acknowledged) == 110
        assert wait_until(lambda: path.client.get("/health").json()["status"] == "ok")
    finally:
        path.close()


def test_a_bus_restarted_without_durability_is_refused_on_reconnect(server, tmp_path):
    # a check period of an hour: only the check of the new connection can notice
    path = EventPath(server, tmp_path / "state", bus_durability_check_seconds=3600).start()
    try:
        assert path.post(events("durable", 30)).status_code == 202
        assert wait_until(path.all_landed)

        server.crash()
        server.durable = False  # the same port, started with appendonly no
        server.start()
        refused = path.post(events("volatile", 10))
        assert refused.status_code == 503 and refused.json()["stored"] == 0
        assert "appendonly is 'no'" in refused.json()["error"]
        health = path.client.get("/health").json()
        assert health["durable"] is False and health["bus"] == "up"
        assert any("not durable" in r and "appendonly" in r for r in health["reasons"])
        assert redis.Redis.from_url(server.url).xlen(path.bus.stream) == 0  # nothing stored

        server.crash()
        server.durable = True
        server.start()
        assert path.post(events("volatile", 10)).status_code == 202
        path.assert_nothing_lost_or_doubled()
        assert len(path.acknowledged) == 40
    finally:
        path.close()


def test_the_bus_made_volatile_under_a_running_collector_is_refused_within_the_period(
        server, tmp_path):
    path = EventPath(server, tmp_path / "state", with_workers=False,
                     bus_durability_check_seconds=0.2)
    admin = redis.Redis.from_url(server.url)
    assert path.post(events("a", 5)).status_code == 202
    for name, volatile, durable in (("appendfsync", "no", "always"),
                                    ("no-appendfsync-on-rewrite", "yes", "no")):
        admin.config_set(name, volatile)
        sent = iter(range(1, 1000))
        assert wait_until(lambda prefix=name, batches=sent: path.post(
            events(prefix, 5, 5 * next(batches))).status_code == 503, 10)
        refused = path.client.post("/events", json=events("refused", 5)).json()
        assert f"{name} is '{volatile}'" in refused["error"] and refused["stored"] == 0
        health = path.client.get("/health")
        assert health.status_code == 503 and health.json()["durable"] is False
        admin.config_set(name, durable)
        assert wait_until(lambda: path.post(events("back", 5)).status_code == 202, 10)
    # what was answered 202 is in the stream, what was refused is not
    assert sorted(stream_ids(path)) == sorted(path.acknowledged)
    assert not any(i.startswith("refused") for i in stream_ids(path))


def test_a_frozen_bus_answers_outcome_unknown_and_the_retry_is_stored_once(server, tmp_path):
    path = EventPath(server, tmp_path / "state", with_workers=False,
                     bus_durability_check_seconds=3600)
    assert path.post(events("f", 1)).status_code == 202
    freeze_process(server.process.pid)
    try:
        frozen = path.post(events("f", 1, start=1))
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    assert frozen.status_code == 503 and frozen.headers["Retry-After"] == "5"
    assert frozen.json()["stored"] == "unknown"  # not "nothing stored": it may have been
    assert "same event_id" in frozen.json()["retry"]
    retried = path.post(events("f", 1, start=1))
    assert retried.status_code == 202
    assert retried.json()["accepted"] + retried.json()["duplicates"] == 1
    assert sorted(stream_ids(path)) == ["f0", "f1"]

    lake = Lake(str(tmp_path / "lake"))
    LakeSink(build_bus(path.settings), lake, SinkConfig(block_ms=10)).run(idle_exit_polls=2)
    assert path.post(events("f", 2)).json()["duplicates"] == 2  # sent a third time
    LakeSink(build_bus(path.settings), lake, SinkConfig(block_ms=10)).run(idle_exit_polls=2)
    path.lake = lake
    assert sorted(path.lake_ids()) == ["f0", "f1"]


class Senders:
    """Two clients posting batches of fresh events as fast as the collector answers; a batch
    answered `stored: "unknown"` is sent again with the same ids until it is acknowledged
    (a later `stored: 0` is about that try only), one answered `stored: 0` is dropped."""

    def __init__(self, path: EventPath):
        self.path, self.stop, self.unknown = path, threading.Event(), []
        self.threads = [threading.Thread(target=self._send, args=(f"t{i}",))
                        for i in range(2)]

    def __enter__(self) -> "Senders":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _send(self, name: str) -> None:
        for n in range(10_000):
            if self.stop.is_set():
                return
            batch = events(f"{name}-{n}-", 20)
            answer = self.path.post(batch)
            if answer.status_code == 503 and answer.json()["stored"] == "unknown":
                self.unknown.append(batch)
                while self.path.post(batch).status_code != 202:
                    time.sleep(0.05)
            time.sleep(0.005)

    def wait_for_more(self, count: int) -> bool:
        before = len(self.path.acknowledged)
        return wait_until(lambda: len(self.path.acknowledged) >= before + count)


def test_kill_9_of_the_bus_mid_write_loses_and_doubles_nothing(server, tmp_path):
    path = EventPath(server, tmp_path / "state").start()
    try:
        with Senders(path) as senders:
            assert senders.wait_for_more(400)
            server.crash()
            assert wait_until(lambda: path.answers[-1] == 503)
            server.start()
            assert senders.wait_for_more(400)
        assert 503 in path.answers and path.answers[-1] == 202
        path.assert_nothing_lost_or_doubled()
        assert not path.workers.supervisor.failed.is_set()
    finally:
        path.close()


def test_a_bus_frozen_under_load_loses_and_doubles_nothing(server, tmp_path):
    # no periodic check due at the freeze: the requests under way are publishes
    path = EventPath(server, tmp_path / "state", bus_durability_check_seconds=3600).start()
    try:
        with Senders(path) as senders:
            assert senders.wait_for_more(400)
            freeze_process(server.process.pid)
            try:  # a few socket timeouts long
                assert wait_until(lambda: path.answers.count(503) >= 3)
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
            assert senders.wait_for_more(400)
        assert senders.unknown  # requests sent before the freeze: outcome unknown, resent
        path.assert_nothing_lost_or_doubled()
        assert not path.workers.supervisor.failed.is_set()
        assert wait_until(lambda: path.client.get("/health").json()["status"] == "ok")
    finally:
        path.close()


@pytest.mark.slow
def test_a_standalone_sink_process_outlasts_a_bus_outage(server, tmp_path):
    settings = Settings(state_dir=tmp_path / "state", bus_redis_url=server.url,
                        event_stream=f"chaos:{uuid.uuid4().hex[:6]}")
    env = worker_env(settings) | {"RECSYS_STREAM_RETRY_FIRST_SECONDS": "0.05",
                                  "RECSYS_STREAM_RETRY_MAX_SECONDS": "0.2"}
    build_sink(settings)  # the group exists before anything is published
    bus = build_collector_bus(settings)
    log = tmp_path / "sink.log"
    with log.open("w") as stderr:
        sink = subprocess.Popen([sys.executable, "-m", "recsys.cli.main", "stream", "sink"],
                                env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        bus.publish(events("before", 20))
        assert wait_until(lambda: bus.pending("lake-sink") == 20, 60)  # in its buffer

        server.crash()
        assert wait_until(lambda: log.read_text().count("retrying in") > OLD_GIVE_UP + 3)
        assert sink.poll() is None  # still running, retrying
        server.start()
        assert bus.publish(events("after", 20)).accepted == 20
        assert wait_until(lambda: bus.pending("lake-sink") == 40)

        sink.send_signal(signal.SIGTERM)  # writes its buffer, acknowledges, exits 0
        assert sink.wait(timeout=60) == 0, log.read_text()[-2000:]
        lake = Lake(settings.lake)
        ids = lake.read_tables(lake.list(RAW_ZONE), columns=["event_id"],
                               schema=RAW_EVENT_SCHEMA).column("event_id").to_pylist()
        assert len(ids) == 40 and set(ids) == {f"{when}{n}" for when in ("before", "after")
                                               for n in range(20)}
    finally:
        if sink.poll() is None:
            sink.kill()


def test_a_read_whose_answer_was_lost_is_read_again(server):
    bus = RedisStreamBus(server.url, stream=f"chaos:{uuid.uuid4().hex[:6]}", socket_timeout=0.3)
    assert bus.read("sink", "sink-1", 10, block_ms=0) == []  # its own backlog: none
    bus.publish(events("lost", 5))
    freeze_process(server.process.pid)
    try:
        with pytest.raises(BusUnavailable):
            bus.read("sink", "sink-1", 10, block_ms=0)  # sent, unanswered
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    assert wait_until(lambda: bus.pending("sink") == 5)  # delivered to sink-1 all the same
    again = bus.read("sink", "sink-1", 10, block_ms=0)
    assert [m.row["event_id"] for m in again] == [f"lost{n}" for n in range(5)]
