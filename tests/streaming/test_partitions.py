"""Scale-out by partition: one user's events in one stream, each partition owned by one
member of a worker group, the publish all or nothing over partitions, and session state,
watermarks and cart timers written only by a partition's owner."""
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest

from recsys.core.errors import ConfigError
from recsys.streaming.bus import BusUnavailable
from recsys.streaming.partitions import Membership, partition_of
from recsys.streaming.processor import ProcessorConfig, SessionProcessor
from recsys.streaming.redis_bus import RedisStreamBus


def test_a_users_partition_is_the_same_in_every_process():
    users = [f"user-{i}" for i in range(200)]
    here = [partition_of(u, 7) for u in users]
    code = ("from recsys.streaming.partitions import partition_of;"
            f"print([partition_of(u, 7) for u in {users!r}])")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": "123"})
    assert eval(other.stdout) == here  # noqa: S307 - a list of ints printed by the test
    counts = Counter(partition_of(f"u{i}", 4) for i in range(10_000))
    assert set(counts) == {0, 1, 2, 3} and min(counts.values()) > 2_300


def test_members_own_every_partition_exactly_once():
    owned = [Membership(k, 3).owned(8) for k in range(3)]
    assert owned == [(0, 3, 6), (1, 4, 7), (2, 5)]
    assert sorted(p for group in owned for p in group) == list(range(8))
    assert Membership.parse("1/2") == Membership(1, 2)
    with pytest.raises(ConfigError, match="at least as many partitions"):
        Membership(0, 4).owned(2)
    with pytest.raises(ConfigError, match="index must be"):
        Membership.parse("2/2")
    with pytest.raises(ConfigError, match="K/N"):
        Membership.parse("first")


def event(n, user, kind="view", ts=None, item="p1"):
    return {"event_id": f"e{n}", "user_id": user, "item_id": item, "event_type": kind,
            "timestamp": ts or int(time.time() * 1000) - 60_000 + n, "category": "c"}


@pytest.fixture
def stream():
    name = f"test:{uuid.uuid4().hex[:8]}"
    collector = RedisStreamBus(stream=name, partitions=4, max_length=400)
    yield name
    collector.reset()
    keys = list(collector.client.scan_iter(match=f"{name}:*"))
    if keys:
        collector.client.delete(*keys)


@pytest.mark.integration
def test_two_members_share_the_partitions_without_overlap(stream):
    collector = RedisStreamBus(stream=stream, partitions=4)
    users = [f"u{i}" for i in range(40)]
    collector.publish([event(n, users[n % 40]) for n in range(400)])
    assert collector.length() == 400
    members = [RedisStreamBus(stream=stream, partitions=4, member=Membership(k, 2))
               for k in range(2)]
    got = []
    for member in members:
        messages = []
        while batch := member.read("g", "c", 50, 10):
            messages += batch
        member.ack("g", messages)
        got.append(messages)
        assert member.lag("g") == 0
    ids = [[m.row["event_id"] for m in messages] for messages in got]
    assert not set(ids[0]) & set(ids[1])
    assert sorted(ids[0] + ids[1]) == sorted(f"e{n}" for n in range(400))
    for k, messages in enumerate(got):  # each user in one member only, in order
        assert all(partition_of(m.row["user_id"], 4) % 2 == k for m in messages)
        for user in {m.row["user_id"] for m in messages}:
            order = [int(m.row["event_id"][1:]) for m in messages if m.row["user_id"] == user]
            assert order == sorted(order)
    assert sum(m.trim() for m in members) == 400 and collector.length() == 0


@pytest.mark.integration
def test_a_full_partition_refuses_the_whole_batch(stream):
    collector = RedisStreamBus(stream=stream, partitions=4, max_length=40)  # 10 each
    collector.ensure_group("g")
    users = {partition_of(f"u{i}", 4): f"u{i}" for i in range(100)}
    full, other = users[0], users[1]
    collector.publish([event(n, full) for n in range(10)])
    with pytest.raises(BusUnavailable, match=r"full: stream .*:p0 holds its maximum of 10"):
        collector.publish([event(100 + n, other) for n in range(3)] + [event(200, full)])
    assert collector.length() == 10  # nothing of the batch in the other partition either
    assert collector.publish([event(100 + n, other) for n in range(3)]).accepted == 3


def pushed_nowhere(frame):
    return len(frame)


@pytest.mark.integration
def test_each_processor_keeps_watermarks_and_timers_of_its_own_partitions(stream):
    collector = RedisStreamBus(stream=stream, partitions=4)
    processors = [SessionProcessor(
        RedisStreamBus(stream=stream, partitions=4, member=Membership(k, 2)),
        collector.client, pushed_nowhere, config=ProcessorConfig(
            consumer=f"p{k}", namespace=stream, partitions=4, member=Membership(k, 2),
            block_ms=10, lateness_ms=0)) for k in range(2)]
    by_partition = {}
    for i in range(200):
        by_partition.setdefault(partition_of(f"u{i}", 4), []).append(f"u{i}")
    carter, later, other = by_partition[0][0], by_partition[0][1], by_partition[1][0]
    now = int(time.time() * 1000)
    cart_at = now - 3_600_000
    collector.publish([event(1, carter, "add_to_cart", cart_at),
                       event(2, carter, "view", cart_at + 1_000),
                       event(3, other, "view", now - 1_000)])
    for processor in processors:
        processor.run(idle_exit_polls=1)
    first, second = processors
    assert first.stats.messages == 2 and second.stats.messages == 1
    assert first.watermark(carter) == cart_at + 1_000   # its own partition's progress,
    assert second.watermark(other) == now - 1_000       # not moved by partition 1's events
    timers = first.keys.cart_timers_of(0, 4)
    assert collector.client.zscore(timers, carter) == cart_at + 600_000  # still pending
    assert first.state(carter)["timer"] == cart_at + 600_000
    collector.publish([event(4, later, "view", now - 2_000)])  # partition 0 moves on
    first.run(idle_exit_polls=1)
    assert first.stats.timers_fired == 1 and collector.client.zscore(timers, carter) is None
    assert first.state(carter)["timer"] is None
    assert second.stats.timers_fired == 0
    timer_keys = [k.decode() for k in collector.client.scan_iter(match=f"{stream}:*timers*")]
    assert timer_keys == [] or all(k.endswith(":p0") for k in timer_keys)
