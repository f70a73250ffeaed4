"""One contract for every bus: Redis Streams (real Redis) and Kafka (a real broker: Tansu
started by the session's `kafka_bootstrap` fixture, or the Kafka RECSYS_KAFKA_BOOTSTRAP
names). Nothing is skipped or faked."""
import time
import uuid

import pytest

from recsys.streaming.bus import BusUnavailable, Every, GroupReader
from recsys.streaming.kafka_bus import KafkaBus
from recsys.streaming.redis_bus import RedisStreamBus
from tests.streaming.conftest import kafka_test_bus


def rows(n, prefix="e"):
    return [{"event_id": f"{prefix}{i}", "user_id": f"u{i % 3}", "item_id": "p",
             "event_type": "view", "timestamp": 1_767_225_600_000 + i} for i in range(n)]


@pytest.fixture(params=["redis", "redis-3-partitions", "kafka"])
def bus(request):
    name = f"test:{uuid.uuid4().hex[:8]}"
    if request.param.startswith("redis"):
        partitions = 3 if request.param == "redis-3-partitions" else 1
        instance = RedisStreamBus(stream=name, max_length=50, partitions=partitions)
        yield instance
        instance.reset()
    else:
        instance = kafka_test_bus(request.getfixturevalue("kafka_bootstrap"))
        yield instance
        instance.close()


@pytest.fixture
def redis_bus():
    """One Redis stream's bound, trim and groups (partitions: test_partitions.py; Kafka keeps
    retention, groups and redelivery on the broker: the tests above)."""
    instance = RedisStreamBus(stream=f"test:{uuid.uuid4().hex[:8]}", max_length=50)
    yield instance
    instance.reset()


pytestmark = pytest.mark.integration


def read_all(bus, group, consumer, expected, seconds=15.0):
    """Reads until `expected` messages came (a Kafka consumer's first reads join its group:
    about a second on Tansu with the tests' session timeout) or `seconds` passed."""
    got = []
    deadline = time.monotonic() + seconds
    while len(got) < expected and time.monotonic() < deadline:
        got += bus.read(group, consumer, 100, 200)
    return got


def test_published_rows_reach_every_group_once(bus):
    result = bus.publish(rows(10))
    assert (result.accepted, result.duplicates) == (10, 0)
    again = bus.publish(rows(10) + rows(2, prefix="new"))
    assert (again.accepted, again.duplicates) == (2, 10)
    for group in ("features", "sink"):
        messages = read_all(bus, group, "c1", 12)
        assert sorted(m.row["event_id"] for m in messages) == sorted(
            [f"e{i}" for i in range(10)] + ["new0", "new1"])
        bus.ack(group, messages)


def test_unacknowledged_messages_are_delivered_again(bus):
    bus.publish(rows(5))
    first = read_all(bus, "g", "c1", 5)
    assert len(first) == 5
    bus.ack("g", first[:2])
    assert bus.read("g", "c1", 100, 100) == []  # held by the caller: not handed out twice
    if isinstance(bus, RedisStreamBus):  # after a restart the own pending entries come back
        restarted = RedisStreamBus(stream=bus.stream, partitions=bus.partitions)
        again = restarted.read("g", "c1", 2, 100) + restarted.read("g", "c1", 2, 100)
        again += restarted.read("g", "c1", 2, 100) if bus.partitions > 1 else []
        got, want = [m.row["event_id"] for m in again], [m.row["event_id"] for m in first[2:]]
        assert got == want if bus.partitions == 1 else sorted(got) == sorted(want)
        assert restarted.read("g", "c1", 100, 100) == []
        stolen = bus.reclaim("g", "c2", 0, 100)
        assert sorted(m.id for m in stolen) == sorted(m.id for m in first[2:])
        bus.ack("g", stolen)
        assert bus.pending("g") == 0
    else:  # a new consumer of the group resumes after the committed offsets
        bus.close()
        restarted = KafkaBus(bus.bootstrap, topic=bus.topic,
                             session_timeout_ms=bus.session_timeout_ms)
        again = read_all(restarted, "g", "c1", 3)
        assert sorted(m.row["event_id"] for m in again) == sorted(
            m.row["event_id"] for m in first[2:])
        assert restarted.read("g", "c1", 100, 300) == []
        restarted.close()


def test_redis_bus_is_bounded_and_trims_only_acknowledged_entries(redis_bus):
    bus = redis_bus
    bus.ensure_group("a")
    bus.ensure_group("b")
    bus.publish(rows(40))
    with pytest.raises(BusUnavailable, match="full"):
        bus.publish(rows(20, prefix="x"))
    assert bus.client.xlen(bus.stream) == 40  # the refused batch stored nothing
    a = bus.read("a", "c", 100, 100)
    bus.ack("a", a)
    assert bus.trim() == 0                  # group b has not read anything yet
    b = bus.read("b", "c", 30, 100)
    bus.ack("b", b[:25])
    assert bus.trim() == 25                 # up to b's oldest pending entry
    assert bus.publish(rows(20, prefix="x")).accepted == 20


def test_back_pressure_comes_from_the_slowest_groups_backlog_not_the_total(redis_bus):
    bus = redis_bus
    readers = {g: GroupReader(bus, g, "c", 100, 10, 60_000, trim_every=Every(0))
               for g in ("a", "b")}
    for batch in range(20):  # 400 events through a bound of 50: consumers keep up
        assert bus.publish(rows(20, prefix=f"k{batch}-")).accepted == 20
        for group, reader in readers.items():
            bus.ack(group, reader.read())
        assert bus.client.xlen(bus.stream) <= 50
    assert sum(r.trimmed for r in readers.values()) >= 350
    refused_at = None
    for batch in range(10):  # b stops; a goes on reading and acknowledging
        try:
            bus.publish(rows(20, prefix=f"s{batch}-"))
        except BusUnavailable:
            refused_at = batch
            break
        bus.ack("a", readers["a"].read())
    assert refused_at == 2  # b's backlog: 40 unread, 20 more would pass 50
    assert bus.lag("b") == 40 and bus.lag("a") == 0


def test_a_lost_group_is_created_again_and_reads_from_the_start(redis_bus):
    bus = redis_bus
    bus.publish(rows(5))
    bus.ack("g", read_all(bus, "g", "c1", 5))
    bus.client.xgroup_destroy(bus.stream, "g")  # what a Redis without its data looks like
    bus.ack("g", [])
    again = read_all(bus, "g", "c1", 5)
    assert sorted(m.row["event_id"] for m in again) == [f"e{i}" for i in range(5)]
    bus.client.xgroup_destroy(bus.stream, "g")
    bus.ack("g", again)  # acknowledging into a lost group does not fail either
    assert bus.pending("g") == 0


def test_a_dead_consumers_entries_are_reclaimed_under_steady_traffic(redis_bus):
    bus = redis_bus
    bus.publish(rows(10))
    dead = read_all(bus, "g", "dead", 10)  # delivered, never acknowledged
    assert len(dead) == 10
    live = GroupReader(bus, "g", "live", 100, 10, reclaim_idle_ms=0,
                       reclaim_every=Every(3600))
    live.reclaim_every.due()  # the timer has just run: the next reclaim is an hour away
    for poll in range(5):  # traffic never stops, so an "empty poll" never comes
        bus.publish(rows(2, prefix=f"p{poll}-"))
        bus.ack("g", live.read())
    assert bus.client.xpending_range(bus.stream, "g", "-", "+", 100, "dead")
    live.reclaim_every = Every(0)
    bus.publish(rows(2, prefix="last-"))
    got = live.read()
    assert sorted(m.row["event_id"] for m in got) == sorted(
        [f"e{i}" for i in range(10)] + ["last-0", "last-1"])
    bus.ack("g", got)
    assert bus.pending("g") == 0 and live.reclaimed == 10


def test_a_dead_redis_answers_unavailable():
    dead = RedisStreamBus("redis://127.0.0.1:1/0", socket_timeout=0.5)
    with pytest.raises(BusUnavailable, match="unavailable"):
        dead.publish(rows(1))
    assert dead.ping() is False


def test_a_dead_kafka_answers_unavailable():
    from tests.streaming.kafka_broker import free_port

    with pytest.raises(BusUnavailable, match="unavailable"):
        KafkaBus(f"127.0.0.1:{free_port()}", timeout_seconds=1.0)
