"""Redis Streams as the event bus (the default).

- `publish` runs one Lua script per batch: for each event, `SET seen:<event_id> NX EX` and,
  only when that key was new, `XADD` - atomic, so an event is never marked seen without
  being stored (idempotent event ids within `dedup_seconds`).
- Retention by progress: `trim()` (run continuously by the workers) removes the entries
  every consumer group has acknowledged (XTRIM MINID below the oldest entry still pending or
  undelivered in any group). Bounded without losing anything: when the slowest group's
  backlog reaches `max_length` the publish script (which trims first) stores nothing and
  the collector answers 503 (back-pressure).
- A group lost with a Redis that kept nothing (or deleted by hand) is created again by the
  next read or ack instead of failing every poll with NOGROUP.
- Partitions (`bus_partitions`): events are spread over N streams by a hash of user_id,
  so one user's events stay in order in one stream; the publish script covers every
  partition of a batch at once (all or nothing), and each consumer reads, acks, reclaims
  and trims only the partitions its `member` owns (streaming/partitions.py).
- Dead letters: bounded the same way (`dead_letter_length`): the quarantine sink's group
  acknowledges what it landed, and the collector is refused (503) before an entry it has
  not read is trimmed.
- Answers: a refusal before anything was sent (no connection could be made, a server that
  is not durable, a full stream) is `BusUnavailable`, nothing stored; a call sent but not
  answered (socket timeout, connection lost) is `BusOutcomeUnknown`: the events may be
  stored, and a retry with the same ids counts them as duplicates. The client does not
  retry on its own (a hidden retry would hide which of the two it was).
- Consumer groups: `read` returns the consumer's own pending entries first (after a crash
  and restart under the same name), then new ones; `reclaim` takes over entries of a dead
  consumer idle for `min_idle_ms` (XAUTOCLAIM).
"""
from __future__ import annotations

import logging
from typing import Any, cast

import orjson
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.typing import EncodableT

from recsys.core.online.redis_keys import RedisKeys
from recsys.core.settings import DEFAULT_EVENT_STREAM, DEFAULT_REDIS_URL
from recsys.streaming.bus import BusOutcomeUnknown, BusUnavailable, Message, PublishResult
from recsys.streaming.durability import DurabilityGuard, NotDurable
from recsys.streaming.partitions import EVERYTHING, Membership, partition_of

log = logging.getLogger(__name__)
# redis-py types every answer of its sync client `Awaitable[Any] | Any` (one class of commands
# serves the sync and the asyncio client, redis/redis-py#2399): the casts below state what the
# sync client returns.

# The oldest entry some consumer group still needs - its oldest pending entry, or the one
# after the last it was given - and the trim of everything before it. Shared by the publish
# script (trim before refusing) and `trim()` (run continuously by the workers).
RETENTION_LUA = """
local function id_parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function id_less(a, b)
  local am, as = id_parts(a)
  local bm, bs = id_parts(b)
  return am < bm or (am == bm and as < bs)
end
local function needed_floor(stream)
  if redis.call('EXISTS', stream) == 0 then return nil end
  local floor = nil
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local f = {}
    for i = 1, #group, 2 do f[group[i]] = group[i + 1] end
    local candidate
    if tonumber(f['pending']) > 0 then
      candidate = redis.call('XPENDING', stream, f['name'])[2]
    else
      local ms, seq = id_parts(f['last-delivered-id'])
      candidate = string.format('%d-%d', ms, seq + 1)
    end
    if floor == nil or id_less(candidate, floor) then floor = candidate end
  end
  return floor
end
local function trim_acknowledged(stream)
  local floor = needed_floor(stream)
  if floor == nil then return 0 end
  return redis.call('XTRIM', stream, 'MINID', floor)
end
"""

# Back-pressure by progress: a stream holds only what some group has not acknowledged
# (after a trim), so refusing when it would pass its bound means the slowest group's backlog
# is at the bound. All or nothing over every partition of the batch: when one partition is
# full, nothing is stored (returns -1 - the index of that partition's key).
# KEYS: the partitions' streams; ARGV: seen prefix, dedup seconds, bound per partition, then
# per event: the index of its stream in KEYS (from 1), event_id, payload.
PUBLISH_SCRIPT = RETENTION_LUA + """
local seen_prefix, dedup_seconds, max_length = ARGV[1], ARGV[2], tonumber(ARGV[3])
local wanted = {}
for i = 4, #ARGV, 3 do
  local k = tonumber(ARGV[i])
  wanted[k] = (wanted[k] or 0) + 1
end
for k, n in pairs(wanted) do
  if redis.call('XLEN', KEYS[k]) + n > max_length then
    trim_acknowledged(KEYS[k])
    if redis.call('XLEN', KEYS[k]) + n > max_length then
      return -k
    end
  end
end
local added = 0
for i = 4, #ARGV, 3 do
  if redis.call('SET', seen_prefix .. ARGV[i + 1], '1', 'NX', 'EX', dedup_seconds) then
    redis.call('XADD', KEYS[tonumber(ARGV[i])], '*', 'e', ARGV[i + 2])
    added = added + 1
  end
end
return added
"""

TRIM_SCRIPT = RETENTION_LUA + """
return trim_acknowledged(KEYS[1])
"""

# The dead-letter stream's back-pressure, as the publish script's: trim what the quarantine
# sink acknowledged, and refuse (-1, nothing stored) rather than drop unread records.
# KEYS: the dead-letter stream; ARGV: the bound, then the records.
DEAD_LETTER_SCRIPT = RETENTION_LUA + """
local bound, n = tonumber(ARGV[1]), #ARGV - 1
if redis.call('XLEN', KEYS[1]) + n > bound then
  trim_acknowledged(KEYS[1])
  if redis.call('XLEN', KEYS[1]) + n > bound then
    return -1
  end
end
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'e', ARGV[i])
end
return n
"""


class NotConnected(redis.ConnectionError):
    """No connection to the server could be made: the command was never sent."""


def _checked_connection(base: type, guard: DurabilityGuard | None) -> type:
    """`base` (the URL's connection class) whose connect failures say that nothing was sent
    (NotConnected), and which, with a guard, checks the server's durability before a new
    connection carries anything (a restarted server is a new connection)."""

    class CheckedConnection(base):
        def on_connect_check_health(self, check_health: bool = True):
            super().on_connect_check_health(check_health=check_health)
            if guard is not None:
                guard.connection_check(self)

        def connect_check_health(self, *args, **kwargs):
            try:
                return super().connect_check_health(*args, **kwargs)
            except NotDurable:
                raise
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                raise NotConnected(str(exc)) from exc

    return CheckedConnection


def _refusal(exc: redis.RedisError) -> bool:
    """Whether the server certainly stored nothing: no connection was made, or it answered
    with an error before the script wrote (full memory, MISCONF, a read-only replica)."""
    return isinstance(exc, (NotConnected, NotDurable, redis.ResponseError))


class RedisStreamBus:
    """The bus over `partitions` streams (one user's events always in one, see
    streaming/partitions.py). A consumer reads, acknowledges, reclaims and trims only the
    partitions its `member` owns; the collector publishes to all of them."""

    def __init__(self, url: str = DEFAULT_REDIS_URL, stream: str = DEFAULT_EVENT_STREAM,
                 max_length: int = 1_000_000, dedup_seconds: int = 86_400,
                 dead_letter_length: int = 100_000, socket_timeout: float = 5.0,
                 partitions: int = 1, member: Membership = EVERYTHING,
                 durability: DurabilityGuard | None = None):
        self.url, self.socket_timeout = url, socket_timeout
        self.durability = durability
        """Checks the server keeps what it acknowledges (the collector's bus; None: no
        check, the workers' buses and a collector allowed a volatile bus)."""
        self.client = redis.Redis.from_url(url, socket_timeout=socket_timeout,
                                           socket_connect_timeout=socket_timeout,
                                           retry=Retry(NoBackoff(), 0))
        pool = self.client.connection_pool
        pool.connection_class = _checked_connection(pool.connection_class, durability)
        keys = RedisKeys(stream)
        self.stream = keys.stream
        self.partitions, self.member = partitions, member
        self.streams = [keys.partition_stream(p, partitions) for p in range(partitions)]
        self.owned = [self.streams[p] for p in member.owned(partitions)]
        self.dead_stream = keys.dead_letters
        self.seen_prefix = keys.seen_prefix
        self.max_length = max_length
        self.partition_bound = -(-max_length // partitions)
        self.dedup_seconds = dedup_seconds
        self.dead_letter_length = dead_letter_length
        self._publish = self.client.register_script(PUBLISH_SCRIPT)
        self._trim = self.client.register_script(TRIM_SCRIPT)
        self._dead_letter = self.client.register_script(DEAD_LETTER_SCRIPT)
        # reads skip redis-py's per-entry dict building (a third of a read's time)
        self._reader = redis.Redis(connection_pool=self.client.connection_pool)
        self._reader.set_response_callback("XREADGROUP", lambda response, **_: response)
        self._groups: set[str] = set()
        self._recovered: set[tuple[str, str]] = set()
        self._recovery_cursor: dict[tuple[str, str], dict[str, str]] = {}

    # -- producer side -------------------------------------------------------------------
    def publish(self, rows: list[dict]) -> PublishResult:
        if not rows:
            return PublishResult(0, 0)
        keys: list[str] = []
        index: dict[int, int] = {}
        args: list[EncodableT] = [self.seen_prefix, self.dedup_seconds, self.partition_bound]
        for row in rows:
            partition = partition_of(row["user_id"], self.partitions)
            if partition not in index:
                keys.append(self.streams[partition])
                index[partition] = len(keys)
            args += [index[partition], row["event_id"], orjson.dumps(row)]
        self._check_durable()
        added = self._write(f"event bus (Redis stream {self.stream})",
                            lambda: self._publish(keys=keys, args=args))
        if added < 0:
            raise BusUnavailable(f"event bus full: stream {keys[-added - 1]} holds its maximum "
                                 f"of {self.partition_bound} unconsumed entries")
        return PublishResult(int(added), len(rows) - int(added))

    def dead_letter(self, records: list[dict]) -> None:
        if not records:
            return
        self._check_durable()
        args: list[EncodableT] = [self.dead_letter_length, *(orjson.dumps(r) for r in records)]
        stored = self._write(f"dead-letter stream {self.dead_stream}",
                             lambda: self._dead_letter(keys=[self.dead_stream], args=args))
        if stored < 0:
            raise BusUnavailable(f"dead-letter stream full: {self.dead_stream} holds its "
                                 f"maximum of {self.dead_letter_length} records not yet "
                                 f"quarantined")

    def _check_durable(self) -> None:
        """Refuse (nothing sent) while the server would lose what it acknowledges."""
        if self.durability is None:
            return
        try:
            problems = self.durability.check(self.client)
        except redis.RedisError as exc:
            raise BusUnavailable(f"event bus (Redis stream {self.stream}) unavailable: "
                                 f"{exc}") from exc
        if problems:
            raise BusUnavailable("event bus not durable, nothing stored: "
                                 + "; ".join(problems))

    @staticmethod
    def _write(what: str, call):
        try:
            return int(call())
        except redis.RedisError as exc:
            if _refusal(exc):
                raise BusUnavailable(f"{what} unavailable: {exc}") from exc
            raise BusOutcomeUnknown(f"{what} did not answer ({type(exc).__name__}: {exc}); "
                                    f"the events may be stored") from exc

    def dead_letters(self, count: int = 1000) -> list[dict]:
        entries = cast("list[tuple[bytes, dict[bytes, bytes]]]",
                       self.client.xrange(self.dead_stream, count=count))
        return [orjson.loads(fields[b"e"]) for _, fields in entries]

    def dead_letter_bus(self) -> "RedisStreamBus":
        """The dead-letter stream as a bus of its own, for the quarantine sink's consumer
        group (entries leave it once quarantined: retention by progress, as here)."""
        return RedisStreamBus(self.url, stream=self.dead_stream,
                              max_length=self.dead_letter_length,
                              socket_timeout=self.socket_timeout)

    def dead_letter_count(self) -> int:
        """Entries in the dead-letter stream (not yet quarantined and trimmed; at most
        `dead_letter_length`: then the collector is refused)."""
        return cast(int, self.client.xlen(self.dead_stream))

    def ping(self) -> bool:
        """Whether the server answers (a server that is not durable does: see
        `durability_problems`)."""
        try:
            return bool(self.client.ping())
        except NotDurable:
            return True
        except redis.RedisError:
            return False

    def durability_problems(self) -> list[str]:
        """Why the server would lose what it acknowledges (checked when due; empty when it
        is durable or not checked)."""
        if self.durability is None:
            return []
        try:
            return self.durability.check(self.client)
        except redis.RedisError:  # unreachable: ping says so; keep the last verdict
            return self.durability.problems

    def length(self) -> int:
        """Entries held in every partition (acknowledged or not, until trimmed)."""
        with self.client.pipeline(transaction=False) as pipe:
            for stream in self.streams:
                pipe.xlen(stream)
            return sum(int(n) for n in pipe.execute())

    # -- consumer side -------------------------------------------------------------------
    def ensure_group(self, group: str) -> None:
        if group in self._groups:
            return
        for stream in self.owned:
            try:
                self.client.xgroup_create(stream, group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._groups.add(group)

    def _recreating_group(self, group: str, action):
        """Run `action`; when the group is gone (NOGROUP: a Redis restarted without its data,
        or a group deleted by hand) create it again and run `action` once more."""
        self.ensure_group(group)
        try:
            return action()
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            log.warning("bus: group %s of %s is gone; creating it again", group, self.stream)
            self._groups.discard(group)
            for key in [k for k in self._recovered if k[0] == group]:
                self._recovered.discard(key)
            for key in [k for k in self._recovery_cursor if k[0] == group]:
                self._recovery_cursor.pop(key, None)
            self.ensure_group(group)
            return action()

    def read(self, group: str, consumer: str, count: int, block_ms: int) -> list[Message]:
        """After a (re)start, first the consumer's own pending entries (paged from where the
        last page ended), then new ones; entries held unacknowledged in a caller's buffer
        are not handed out twice, except after a failed read (then the consumer's pending
        entries come again: the sinks drop repeated ids, the processor's apply is a no-op)."""
        try:
            return self._recreating_group(
                group, lambda: self._read(group, consumer, count, block_ms))
        except redis.RedisError as exc:
            # a read the server took but whose answer was lost left entries pending to this
            # consumer: the next read starts again with its own pending entries (a caller
            # holding some of them already drops the repeats by id)
            self._recovered.discard((group, consumer))
            self._recovery_cursor.pop((group, consumer), None)
            raise BusUnavailable(f"cannot read {self.stream}: {exc}") from exc

    def _read(self, group: str, consumer: str, count: int, block_ms: int) -> list[Message]:
        key = (group, consumer)
        if key not in self._recovered:
            cursors = self._recovery_cursor.setdefault(key, {s: "0" for s in self.owned})
            own = cast("list[list[Any]] | None", self._reader.xreadgroup(
                group, consumer, {s: cursor for s, cursor in cursors.items()}, count=count))
            returned = {_id(stream): entries for stream, entries in own or []}
            messages = []
            for name in list(cursors):
                entries = returned.get(name)
                if entries:
                    cursors[name] = _id(entries[-1][0])
                    messages += _entries(name, entries)
                else:  # this partition's own backlog is done
                    del cursors[name]
            if not cursors:
                self._recovered.add(key)
            if messages:
                return messages
        fresh = self._reader.xreadgroup(group, consumer, {s: ">" for s in self.owned},
                                        count=count, block=block_ms or None)
        return _messages(fresh)

    def ack(self, group: str, messages: list[Message]) -> None:
        if not messages:
            return
        by_stream: dict[str, list[str]] = {}
        for message in messages:
            by_stream.setdefault(message.stream or self.streams[0], []).append(message.id)

        def acknowledge():
            with self.client.pipeline(transaction=False) as pipe:
                for stream, ids in by_stream.items():
                    pipe.xack(stream, group, *ids)
                return pipe.execute()
        try:  # with the group gone there is nothing to acknowledge: the new group re-reads
            self._recreating_group(group, acknowledge)
        except redis.RedisError as exc:
            raise BusUnavailable(f"cannot acknowledge on {self.stream}: {exc}") from exc

    def reclaim(self, group: str, consumer: str, min_idle_ms: int, count: int) -> list[Message]:
        def claim():
            taken = []
            for stream in self.owned:
                _, claimed, *_ = cast("list[Any]", self.client.xautoclaim(
                    stream, group, consumer, min_idle_ms, start_id="0-0", count=count))
                taken += [Message(_id(entry_id), orjson.loads(fields[b"e"]), stream)
                          for entry_id, fields in claimed if fields]
            return taken
        try:
            return self._recreating_group(group, claim)
        except redis.RedisError as exc:
            raise BusUnavailable(f"cannot reclaim on {self.stream}: {exc}") from exc

    def pending(self, group: str) -> int:
        def count():
            return sum(int(cast("dict[str, Any]", self.client.xpending(s, group))["pending"])
                       for s in self.owned)
        return self._recreating_group(group, count)

    def lag(self, group: str) -> int:
        """Entries of the owned partitions not yet delivered to the group plus those
        delivered but not acked."""
        self.ensure_group(group)
        total = 0
        for stream in self.owned:
            groups = cast("list[dict[str, Any]]", self.client.xinfo_groups(stream))
            info = {g["name"].decode(): g for g in groups}
            if group not in info:  # lost with its data: the recreated group must read it all
                self._groups.discard(group)
                self.ensure_group(group)
                return self.lag(group)
            entry = info[group]
            undelivered = entry.get("lag")
            if undelivered is None:  # Redis cannot tell after deletions
                newest = cast("dict[str, Any]",
                              self.client.xinfo_stream(stream))["last-generated-id"]
                undelivered = 0 if _id(entry["last-delivered-id"]) == _id(newest) \
                    else cast(int, self.client.xlen(stream))  # then the stream bounds it
            total += int(undelivered) + int(entry["pending"])
        return total

    def trim(self) -> int:
        """Drop entries every group has acknowledged in the owned partitions; returns how
        many were removed. The workers call it continuously (`GroupReader`); a stream
        without groups keeps all."""
        try:
            return sum(int(self._trim(keys=[stream])) for stream in self.owned)
        except redis.RedisError as exc:
            raise BusUnavailable(f"cannot trim {self.stream}: {exc}") from exc

    def reset(self) -> None:
        """Delete the streams, their groups, dead letters and dedup keys (tests, benchmarks)."""
        keys = list(self.client.scan_iter(match=f"{self.seen_prefix}*", count=10_000))
        for start in range(0, len(keys), 10_000):
            self.client.delete(*keys[start:start + 10_000])
        self.client.delete(*self.streams, self.dead_stream)
        self._groups.clear()
        self._recovered.clear()
        self._recovery_cursor.clear()


def _messages(response) -> list[Message]:
    """Raw XREADGROUP reply: [[stream, [[id, [field, value, ...]], ...]], ...]."""
    out = []
    for stream, entries in response or []:
        out += _entries(_id(stream), entries)
    return out


def _entries(stream: str, entries) -> list[Message]:
    out = []
    for entry_id, fields in entries:
        if fields:  # an entry trimmed while pending comes back empty (nil)
            payload = fields[1] if fields[0] == b"e" else fields[fields.index(b"e") + 1]
            out.append(Message(entry_id.decode(), orjson.loads(payload), stream))
    return out


def _id(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
