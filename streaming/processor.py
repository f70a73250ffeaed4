"""The session-feature stream job: bus -> per-user state in Redis -> Feast `user_session`.

One poll = one batch: read up to `batch_size` messages, load the states of the users in it
with one MGET, fold the events in (streaming/session_state.py), write the states and the
`recent:<user>` Redis lists with one script call and the cart timers in the same pipeline
(sent on a writer thread while the features are computed), write every touched user's
features to Feast's online store in one batch (feature_repo/features/session_writer.py), and only
when both writes succeeded acknowledge the messages. A crash anywhere
before the ack means redelivery; replayed events are no-ops on the state, and features are
re-pushed for every user of a batch (duplicates included), so nothing is lost or doubled.

Feature rows are stamped with processing time (Feast's Redis store only overwrites a row
with a newer stamp); `last_event_ts` carries the event time. Event time: the watermark (one
per bus partition) is the newest event time seen minus `lateness`. Users whose oldest open
cart is older than the watermark minus 10 minutes get their features re-pushed with
`cart_abandonment_risk` raised (timers in a Redis sorted set per partition).

Scale-out: N processors share the bus's partitions (`member`); a partition's users, their
state, its watermark and its cart timers are written by its one owner only.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import cast

import orjson
import pandas as pd
import redis
from redis.typing import EncodableT

from recsys.core.data.columns import Columns
from recsys.core.data.feature_snapshots import FEATURE_TIMESTAMP
from recsys.core.online.redis_keys import RedisKeys
from recsys.core.settings import DEFAULT_EVENT_STREAM
from recsys.streaming.bus import EventBus, GroupReader, Message
from recsys.streaming.partitions import EVERYTHING, Membership, partition_of
from recsys.streaming.session_state import (
    apply_events,
    cart_deadline,
    event_time,
    features,
    new_state,
    upgrade_state,
)
from recsys.streaming.worker_config import (
    BlockMs,
    ConsumerName,
    GroupName,
    ReadCount,
    StreamWorkerConfig,
)

log = logging.getLogger(__name__)
C = Columns
GROUP = "session-features"
KEEP_RECENT = -1

# One call per poll writes every touched user's state and `recent:<user>` list.
# KEYS: state key, recent key per user; ARGV: ttl, then per user the state JSON and the
# number of recent items that follow (KEEP_RECENT: leave the list as it is).
WRITE_STATES_SCRIPT = """
local ttl = ARGV[1]
local at = 2
for i = 1, #KEYS, 2 do
  redis.call('SET', KEYS[i], ARGV[at], 'EX', ttl)
  local n = tonumber(ARGV[at + 1])
  if n >= 0 then
    redis.call('DEL', KEYS[i + 1])
    if n > 0 then
      redis.call('RPUSH', KEYS[i + 1], unpack(ARGV, at + 2, at + 1 + n))
      redis.call('EXPIRE', KEYS[i + 1], ttl)
    end
  else
    n = 0
  end
  at = at + 2 + n
end
return (#KEYS) / 2
"""


class ProcessorConfig(StreamWorkerConfig):
    group: GroupName = GROUP
    consumer: ConsumerName = "processor-1"
    batch_size: ReadCount = 10000
    block_ms: BlockMs = 1000
    lateness_ms: int = 5 * 60_000
    state_ttl_seconds: int = 2 * 86_400
    read_ahead: bool = True
    max_event_ahead_ms: int = 5 * 60_000
    """The watermark never passes processing time plus this skew, whatever an event says."""
    max_window_events: int = 1_000
    """Per-user cap on the session window's entries (the newest are kept)."""
    namespace: str = DEFAULT_EVENT_STREAM
    """Namespace of the processor's Redis keys (`RedisKeys`): the event stream's name."""
    partitions: int = 1
    """The bus's partitions (`bus_partitions`): watermarks and cart timers are kept per
    partition, so that only a partition's owner writes them."""
    member: Membership = EVERYTHING
    """Which of the processors this one is: it owns the partitions p % members == index."""


@dataclass
class ProcessorStats:
    messages: int = 0
    applied: int = 0
    duplicates: int = 0
    late: int = 0
    itemless: int = 0
    """Events naming no item (searches): acknowledged, not folded into a session."""
    users_pushed: int = 0
    timers_fired: int = 0
    polls: int = 0
    batches: int = 0
    seconds: float = 0.0
    freshness_seconds: float | None = None
    """Of the last batch: from its newest event's time until its features were written."""
    last_poll: dict = field(default_factory=dict)


class SessionProcessor:
    def __init__(self, bus: EventBus, client: redis.Redis,
                 push: Callable[[pd.DataFrame], int], categories: dict[str, str] | None = None,
                 config: ProcessorConfig | None = None):
        self.bus = bus
        self.client = client
        self.push = push
        self.categories = categories or {}
        self.config = config or ProcessorConfig()
        self.stats = ProcessorStats()
        self.keys = RedisKeys(self.config.namespace)
        self._member_owned = self.config.member.owned(self.config.partitions)
        self._state_prefix = self.keys.session_state_prefix  # joined per user in the hot loop
        self._write_states = client.register_script(WRITE_STATES_SCRIPT)
        self.reader = GroupReader(bus, self.config.group, self.config.consumer,
                                  self.config.batch_size, self.config.block_ms,
                                  self.config.reclaim_idle_ms)
        self._bus_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bus-read")
        self._state_writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="state-write")
        self._next: Future | None = None
        self._unfinished: list[Message] | None = None

    @property
    def owned(self) -> tuple[int, ...]:
        """The partitions this processor owns now: its membership's (Redis Streams), or those
        the consumer group gives it (Kafka: they move when members come and go)."""
        assigned = getattr(self.bus, "owned_partitions", None)
        now = assigned(self.config.group) if assigned is not None else None
        return self._member_owned if now is None else now

    def watermark(self, user_id: str | None = None) -> int | None:
        """The event-time watermark of a user's partition (without a user: the newest of
        the partitions this processor owns)."""
        parts = self.config.partitions
        owned = [partition_of(user_id, parts)] if user_id is not None else self.owned
        values = [v for v in _mget(self.client, [self.keys.watermark_of(p, parts)
                                                 for p in owned]) if v is not None]
        return max(int(v) for v in values) if values else None

    def state(self, user_id: str) -> dict | None:
        raw = cast("bytes | None",  # the sync client's answer (see _mget)
                   self.client.get(f"{self._state_prefix}{user_id}"))
        return upgrade_state(orjson.loads(raw)) if raw else None

    # -- the loop -------------------------------------------------------------------------
    def poll(self) -> int:
        """Process one batch; returns the number of messages handled.

        Read-ahead: after a full batch (a backlog) the next one is read on the bus thread
        while this one is processed, so waiting on the bus overlaps the work. Bus calls never
        overlap each other (Kafka consumers are not thread-safe): while a read-ahead is under
        way, the ack queues behind it on the same thread. A read-ahead batch not processed
        yet is delivered but unacknowledged, so a crash only means its redelivery."""
        cfg = self.config
        if self._unfinished is not None:  # the batch a failure interrupted, first
            messages = self._unfinished
        elif self._next is not None:
            ahead, self._next = self._next, None  # a failed read-ahead is not kept
            messages = ahead.result()
        else:
            messages = self._read()
        self.stats.polls += 1
        if not messages:
            return 0
        # kept until acknowledged: after a failure (bus or store down) the worker's next
        # poll takes it again, in order, instead of waiting for its redelivery
        self._unfinished = messages
        if cfg.read_ahead and self._next is None and len(messages) >= cfg.batch_size:
            self._next = self._bus_thread.submit(self._read)
        started = time.perf_counter()
        self.process(messages)
        if self._next is not None:
            self._bus_thread.submit(self.bus.ack, cfg.group, messages).result()
        else:
            self.bus.ack(cfg.group, messages)
        self._unfinished = None
        self.stats.messages += len(messages)
        self.stats.batches += 1
        self.stats.seconds += time.perf_counter() - started
        return len(messages)

    def _read(self) -> list[Message]:
        return self.reader.read()

    def run(self, stop: Callable[[], bool] = lambda: False, idle_exit_polls: int | None = None):
        idle = 0
        while not stop():
            handled = self.poll()
            idle = 0 if handled else idle + 1
            if idle_exit_polls is not None and idle >= idle_exit_polls:
                return

    def process(self, messages: list[Message]) -> None:
        cfg = self.config
        parts = cfg.partitions
        categories = self.categories
        by_user: dict[str, list[dict]] = defaultdict(list)
        itemless = 0
        for message in messages:
            row = message.row
            item = row.get(C.item_id)
            if not item:  # a search without an item: nothing to fold in
                itemless += 1
                continue
            if not row.get(C.category):
                row[C.category] = categories.get(item)
            by_user[row[C.user_id]].append(row)
        self.stats.itemless += itemless
        if not by_user:
            return
        users = list(by_user)
        newest = {user: max(map(event_time, rows)) for user, rows in by_user.items()}
        user_partition = {u: partition_of(u, parts) for u in users}
        watermarks = self._advance_watermarks(newest, user_partition)
        prefix = self._state_prefix
        raw_states = _mget(self.client, [f"{prefix}{u}" for u in users])
        states = {}
        stats = self.stats
        for user, raw in zip(users, raw_states):
            state = upgrade_state(orjson.loads(raw)) if raw else new_state()
            result = apply_events(state, by_user[user], cfg.lateness_ms, cfg.max_window_events)
            stats.applied += result.applied
            stats.duplicates += result.duplicates
            stats.late += result.late
            states[user] = state
        self._load_due_timers(states, user_partition, watermarks)
        pipe = self._state_writes(states, by_user, user_partition, watermarks)
        # sent on the writer thread while this one computes and pushes the features
        written = self._state_writer.submit(_execute, pipe)
        try:
            rows = []
            for user, state in states.items():
                values = features(state, watermarks[user_partition[user]])
                values[C.user_id] = user
                rows.append(values)
            stats.users_pushed += self.push(feature_frame(rows))
        finally:
            written.result()  # raises what the write raised: then nothing is acknowledged
        stats.freshness_seconds = max(0.0, time.time() - max(newest.values()) / 1000)
        stats.last_poll = {"messages": len(messages), "users": len(rows),
                           "watermark": max(watermarks.values())}

    def _state_writes(self, states: dict, by_user: dict, user_partition: dict[str, int],
                      watermarks: dict[int, int]):
        """A pipeline (not sent yet) of every changed state and `recent:<user>` list (one
        script call), the cart timers and the watermarks."""
        cfg = self.config
        parts = cfg.partitions
        timers_keys = {p: self.keys.cart_timers_of(p, parts) for p in watermarks}
        prefix, recent_prefix = self._state_prefix, self.keys.recent_items_prefix
        keys: list[str] = []
        args: list[EncodableT] = [cfg.state_ttl_seconds]
        pipe = self.client.pipeline(transaction=False)
        for user, state in states.items():
            partition = user_partition[user]
            deadline = cart_deadline(state)
            timer = None if deadline is None or deadline <= watermarks[partition] else deadline
            timer_changed = timer != state.get("timer")
            if timer_changed:
                if timer is None:
                    pipe.zrem(timers_keys[partition], user)
                else:
                    pipe.zadd(timers_keys[partition], {user: timer})
                state["timer"] = timer
            touched = user in by_user
            if touched or timer_changed:
                keys.append(f"{prefix}{user}")
                keys.append(f"{recent_prefix}{user}")
                args.append(orjson.dumps(state))
                if touched:
                    args.append(len(state["items"]))
                    args += state["items"]
                else:
                    args.append(KEEP_RECENT)
        if keys:
            self._write_states(keys=keys, args=args, client=pipe)
        for partition, watermark in watermarks.items():
            pipe.set(self.keys.watermark_of(partition, parts), watermark)
        return pipe

    def _advance_watermarks(self, newest_of_user: dict[str, int],
                            user_partition: dict[str, int]) -> dict[int, int]:
        """Every owned partition's watermark after this batch: the newest event time seen
        in it minus `lateness`, never past processing time plus the allowed skew, never
        backwards. Partitions of the batch this processor does not own (a membership change
        under way) are advanced too: their events are processed here."""
        cfg = self.config
        ceiling = int(time.time() * 1000) + cfg.max_event_ahead_ms
        newest: dict[int, int] = {}
        for user, top in newest_of_user.items():
            partition = user_partition[user]
            if top > newest.get(partition, top - 1):
                newest[partition] = top
        partitions = sorted(set(self.owned) | set(newest))
        stored = _mget(self.client, [self.keys.watermark_of(p, cfg.partitions)
                                     for p in partitions])
        watermarks = {}
        for partition, value in zip(partitions, stored):
            old = int(value) if value is not None else 0
            seen = newest.get(partition)
            watermarks[partition] = old if seen is None else \
                max(old, min(seen, ceiling) - cfg.lateness_ms)
        return watermarks

    def _load_due_timers(self, states: dict, user_partition: dict[str, int],
                         watermarks: dict[int, int]) -> None:
        """Add to `states` the users whose cart timer the watermark of their partition has
        passed; a timer whose state expired (state_ttl_seconds) goes with it."""
        parts = self.config.partitions
        with self.client.pipeline(transaction=False) as pipe:
            for partition, watermark in watermarks.items():
                pipe.zrangebyscore(self.keys.cart_timers_of(partition, parts), "-inf",
                                   watermark)
            due_lists = pipe.execute()
        due = []
        for partition, users in zip(watermarks, due_lists):
            for user in (u.decode() for u in users):
                if user not in states:
                    due.append(user)
                    user_partition[user] = partition
        self.stats.timers_fired += len(due)
        if not due:
            return
        expired: dict[int, list[str]] = defaultdict(list)
        for user, raw in zip(due, _mget(self.client, [f"{self._state_prefix}{u}" for u in due])):
            if raw:
                states[user] = upgrade_state(orjson.loads(raw))
            else:
                expired[user_partition[user]].append(user)
        for partition, users in expired.items():
            self.client.zrem(self.keys.cart_timers_of(partition, parts), *users)


def _mget(client: redis.Redis, keys: list[str]) -> list[bytes | None]:
    # redis-py types every answer of its sync client `Awaitable[Any] | Any` (one class of
    # commands serves both clients, redis/redis-py#2399): this is the sync client's MGET
    return cast("list[bytes | None]", client.mget(keys))


def _execute(pipe) -> list:
    with pipe:
        return pipe.execute()


def feature_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows of features() -> the frame Feast's `user_session` push source takes."""
    frame = pd.DataFrame(rows)
    frame["last_event_ts"] = pd.to_datetime(frame["last_event_ts"], unit="ms", utc=True)
    # processing time: Feast's Redis store keeps a row only when its timestamp is newer than
    # the stored one, and a re-evaluation (late event, cart timer) keeps last_event_ts
    frame[FEATURE_TIMESTAMP] = pd.Timestamp.now(tz="UTC")
    frame["avg_view_price_10m"] = pd.to_numeric(frame["avg_view_price_10m"], errors="coerce")
    frame["cart_abandonment_risk"] = frame["cart_abandonment_risk"].astype(bool)
    frame["comparing_products"] = frame["comparing_products"].astype(bool)
    return frame[[C.user_id, "recent_items", "avg_view_price_10m", "top_category_30m",
                  "cart_abandonment_risk", "comparing_products", "last_event_ts",
                  FEATURE_TIMESTAMP]]
