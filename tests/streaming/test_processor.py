"""The session processor on a real Redis: an event from a broken clock cannot move the
watermark, and timers leave with the state they belong to."""
import time
import uuid

import pytest

from recsys.streaming.processor import ProcessorConfig, SessionProcessor, feature_frame
from recsys.streaming.redis_bus import RedisStreamBus

pytestmark = pytest.mark.integration
MIN = 60_000


class PushedRows:
    """What the processor hands to the online store, kept for the assertions."""

    def __init__(self):
        self.rows = {}

    def __call__(self, frame):
        for row in frame.to_dict("records"):
            self.rows[row["user_id"]] = row
        return len(frame)


@pytest.fixture
def processor():
    bus = RedisStreamBus(stream=f"test:{uuid.uuid4().hex[:8]}")
    pushed = PushedRows()
    instance = SessionProcessor(bus, bus.client, pushed, config=ProcessorConfig(
        namespace=bus.stream, block_ms=10, reclaim_idle_ms=60_000))
    instance.pushed = pushed
    yield instance
    keys = list(bus.client.scan_iter(match=f"{bus.stream}:*"))
    if keys:
        bus.client.delete(*keys)
    bus.reset()


def event(n, user, kind, ts):
    return {"event_id": f"e{n}", "user_id": user, "item_id": f"p{n}", "event_type": kind,
            "timestamp": ts, "category": "shoes", "price": 10.0}


def drain(processor) -> int:
    """Poll until the stream is empty; returns how many messages were handled."""
    handled = 0
    while batch := processor.poll():
        handled += batch
    return handled


def test_an_event_from_2096_cannot_move_the_watermark(processor):
    now = int(time.time() * 1000)
    processor.bus.publish([event(1, "alice", "add_to_cart", now - 2 * MIN),
                           event(2, "bot", "view", 3_978_000_000_000)])  # year 2096
    drain(processor)
    assert processor.watermark() <= int(time.time() * 1000)  # at most now + skew - lateness
    assert processor.pushed.rows["alice"]["cart_abandonment_risk"] is False
    processor.bus.publish([event(3, "alice", "view", now - MIN)])
    drain(processor)
    assert processor.stats.late == 0  # a real event after the bogus one is not "late"
    assert processor.pushed.rows["alice"]["cart_abandonment_risk"] is False


def test_a_timer_whose_state_expired_is_removed(processor):
    now = int(time.time() * 1000)
    processor.bus.publish([event(1, "carol", "add_to_cart", now - 60 * MIN)])
    drain(processor)
    keys = processor.keys
    assert processor.client.zscore(keys.cart_timers, "carol") is not None
    processor.client.delete(f"{keys.session_state_prefix}carol")  # what its TTL does
    processor.bus.publish([event(2, "dave", "view", now)])  # the watermark passes the timer
    drain(processor)
    assert processor.client.zscore(keys.cart_timers, "carol") is None
    assert processor.client.zcard(keys.cart_timers) == 0


def test_a_failed_state_write_acknowledges_nothing_even_with_the_features_pushed(processor):
    """The state writes go out on a writer thread while the features are pushed: when they
    fail, the batch stays pending (redelivered), whatever the push did."""
    import redis

    now = int(time.time() * 1000)
    state_writes = processor._state_writes

    def failing_state_writes(*args):  # Redis refuses the pipeline's last command
        pipe = state_writes(*args)
        pipe.execute_command("NO-SUCH-COMMAND")
        return pipe

    processor._state_writes = failing_state_writes
    processor.bus.publish([event(1, "erin", "view", now - 2 * MIN),
                           event(2, "erin", "add_to_cart", now - MIN)])
    with pytest.raises(redis.ResponseError, match="unknown command"):
        processor.poll()
    assert "erin" in processor.pushed.rows  # the push ran beside the failing write
    assert processor.bus.pending(processor.config.group) == 2
    assert processor.stats.messages == 0
    processor._state_writes = state_writes
    processor.reader.reclaim_idle_ms = 0  # the same consumer takes its pending entries back
    processor.reader.reclaim_every.seconds = 0
    assert drain(processor) == 2
    assert processor.bus.pending(processor.config.group) == 0
    assert processor.client.zscore(processor.keys.cart_timers, "erin") == now - MIN + 10 * MIN


def test_feature_frame_keeps_event_time_and_types():
    frame = feature_frame([{"user_id": "u", "recent_items": ["a"], "avg_view_price_10m": None,
                            "top_category_30m": None, "cart_abandonment_risk": False,
                            "comparing_products": False, "last_event_ts": 1_000}])
    assert str(frame["last_event_ts"].iloc[0]) == "1970-01-01 00:00:01+00:00"
    assert frame["cart_abandonment_risk"].dtype == bool


def test_the_sinks_memory_of_written_ids_is_bounded_and_never_doubles_a_row(tmp_path):
    from recsys.core.data.event_store import RAW_ZONE
    from recsys.core.data.lake import Lake
    from recsys.core.data.schema import RAW_EVENT_SCHEMA
    from recsys.streaming.lake_sink import LakeSink, SinkConfig

    bus = RedisStreamBus(stream=f"test:{uuid.uuid4().hex[:8]}")
    lake = Lake(str(tmp_path / "lake"))
    sink = LakeSink(bus, lake, SinkConfig(block_ms=10, max_seconds=0, max_seen_partitions=2))
    day = 86_400_000
    start = (int(time.time() * 1000) // day - 5) * day
    rows = [event(n, f"u{n}", "view", start + (n % 4) * day + n) for n in range(40)]
    try:
        bus.publish(rows)
        sink.run(idle_exit_polls=2)
        assert len(sink._seen) == 2  # four date partitions written, two remembered
        bus.reset()  # the stream, its group and the dedup markers are gone ...
        bus.publish(rows[:8])  # ... so the oldest hours' events come again
        sink.run(idle_exit_polls=2)
        ids = lake.read_tables(lake.list(RAW_ZONE), columns=["event_id"],
                               schema=RAW_EVENT_SCHEMA).column("event_id").to_pylist()
        assert sorted(ids) == sorted(f"e{n}" for n in range(40))
        assert sink.stats.duplicates == 8
    finally:
        bus.reset()


def test_an_event_both_extracted_and_streamed_is_in_the_raw_zone_once(tmp_path):
    from recsys.core.data.event_store import RAW_ZONE, append_partitioned
    from recsys.core.data.lake import Lake
    from recsys.core.data.schema import RAW_EVENT_SCHEMA
    from recsys.streaming.lake_sink import LakeSink, SinkConfig, rows_to_frame

    lake = Lake(str(tmp_path / "lake"))
    now = int(time.time() * 1000)
    rows = [event(n, "u1", "view", now - n * 1000) for n in range(6)]
    extracted = append_partitioned(lake, RAW_ZONE, rows_to_frame(rows[:4]), "event_id",
                                   RAW_EVENT_SCHEMA)  # a file's extract: e0..e3
    assert extracted.written == 4
    bus = RedisStreamBus(stream=f"test:{uuid.uuid4().hex[:8]}")
    try:
        bus.publish(rows)  # the same events also came through the collector
        sink = LakeSink(bus, lake, SinkConfig(block_ms=10, max_seconds=0))
        sink.run(idle_exit_polls=2)
    finally:
        bus.reset()
    ids = lake.read_tables(lake.list(RAW_ZONE), columns=["event_id"],
                           schema=RAW_EVENT_SCHEMA).column("event_id").to_pylist()
    assert sorted(ids) == [f"e{n}" for n in range(6)]
    assert sink.stats.written == 2 and sink.stats.duplicates == 4
    again = append_partitioned(lake, RAW_ZONE, rows_to_frame(rows), "event_id",
                               RAW_EVENT_SCHEMA)  # and extract after the sink
    assert (again.written, again.already_present) == (0, 6)
