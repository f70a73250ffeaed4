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
- Consumer groups: `read` returns the consumer's own pending entries first (after a crash
  and restart under the same name), then new ones; `reclaim` takes over entries of a dead
  consumer idle for `min_idle_ms` (XAUTOCLAIM).
"""
from __future__ import annotations

import logging

import orjson
import redis

from recsys.core.redis_keys import RedisKeys
from recsys.core.settings import DEFAULT_EVENT_STREAM, DEFAULT_REDIS_URL
from recsys.streaming.bus import BusUnavailable, Message, PublishResult

log = logging.getLogger(__name__)

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

# Back-pressure by progress: the stream holds only what some group has not acknowledged
# (after a trim), so refusing when it would pass `max_length` means the slowest group's
# backlog is at the bound. Nothing of the batch is stored then.
PUBLISH_SCRIPT = RETENTION_LUA + """
local stream, seen_prefix, dedup_seconds, max_length = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local n = (#ARGV - 3) / 2
if redis.call('XLEN', stream) + n > tonumber(max_length) then
  trim_acknowledged(stream)
  if redis.call('XLEN', stream) + n > tonumber(max_length) then
    return -1
  end
end
local added = 0
for i = 0, n - 1 do
  local event_id, payload = ARGV[4 + 2 * i], ARGV[5 + 2 * i]
  if redis.call('SET', seen_prefix .. event_id, '1', 'NX', 'EX', dedup_seconds) then
    redis.call('XADD', stream, '*', 'e', payload)
    added = added + 1
  end
end
return added
"""

TRIM_SCRIPT = RETENTION_LUA + """
return trim_acknowledged(KEYS[1])
"""


class RedisStreamBus:
    def __init__(self, url: str = DEFAULT_REDIS_URL, stream: str = DEFAULT_EVENT_STREAM,
                 max_length: int = 1_000_000, dedup_seconds: int = 86_400,
                 dead_letter_length: int = 100_000, socket_timeout: float = 5.0):
        self.url, self.socket_timeout = url, socket_timeout
        self.client = redis.Redis.from_url(url, socket_timeout=socket_timeout,
                                           socket_connect_timeout=socket_timeout)
        keys = RedisKeys(stream)
        self.stream = keys.stream
        self.dead_stream = keys.dead_letters
        self.seen_prefix = keys.seen_prefix
        self.max_length = max_length
        self.dedup_seconds = dedup_seconds
        self.dead_letter_length = dead_letter_length
        self._publish = self.client.register_script(PUBLISH_SCRIPT)
        self._trim = self.client.register_script(TRIM_SCRIPT)
        # reads skip redis-py's per-entry dict building (a third of a read's time)
        self._reader = redis.Redis(connection_pool=self.client.connection_pool)
        self._reader.set_response_callback("XREADGROUP", lambda response, **_: response)
        self._groups: set[str] = set()
        self._recovered: set[tuple[str, str]] = set()
        self._recovery_cursor: dict[tuple[str, str], str] = {}

    # -- producer side -------------------------------------------------------------------
    def publish(self, rows: list[dict]) -> PublishResult:
        if not rows:
            return PublishResult(0, 0)
        args = [self.seen_prefix, self.dedup_seconds, self.max_length]
        for row in rows:
            args += [row["event_id"], orjson.dumps(row)]
        try:
            added = self._publish(keys=[self.stream], args=args)
        except redis.RedisError as exc:
            raise BusUnavailable(f"event bus (Redis stream {self.stream}) unavailable: "
                                 f"{exc}") from exc
        if added < 0:
            raise BusUnavailable(f"event bus full: stream {self.stream} holds its maximum of "
                                 f"{self.max_length} unconsumed entries")
        return PublishResult(int(added), len(rows) - int(added))

    def dead_letter(self, records: list[dict]) -> None:
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for record in records:
                    pipe.xadd(self.dead_stream, {"e": orjson.dumps(record)},
                              maxlen=self.dead_letter_length, approximate=True)
                pipe.execute()
        except redis.RedisError as exc:
            raise BusUnavailable(f"dead-letter stream {self.dead_stream} unavailable: "
                                 f"{exc}") from exc

    def dead_letters(self, count: int = 1000) -> list[dict]:
        entries = self.client.xrange(self.dead_stream, count=count)
        return [orjson.loads(fields[b"e"]) for _, fields in entries]

    def dead_letter_bus(self) -> "RedisStreamBus":
        """The dead-letter stream as a bus of its own, for the quarantine sink's consumer
        group (entries leave it once quarantined: retention by progress, as here)."""
        return RedisStreamBus(self.url, stream=self.dead_stream,
                              max_length=self.dead_letter_length,
                              socket_timeout=self.socket_timeout)

    def dead_letter_count(self) -> int:
        """Entries in the dead-letter stream (capped at `dead_letter_length`)."""
        return int(self.client.xlen(self.dead_stream))

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    # -- consumer side -------------------------------------------------------------------
    def ensure_group(self, group: str) -> None:
        if group in self._groups:
            return
        try:
            self.client.xgroup_create(self.stream, group, id="0", mkstream=True)
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
                self._recovery_cursor.pop(key, None)
            self.ensure_group(group)
            return action()

    def read(self, group: str, consumer: str, count: int, block_ms: int) -> list[Message]:
        """After a (re)start, first the consumer's own pending entries (paged from where the
        last page ended), then new ones; entries held unacknowledged in a caller's buffer
        are not handed out twice."""
        try:
            return self._recreating_group(
                group, lambda: self._read(group, consumer, count, block_ms))
        except redis.RedisError as exc:
            raise BusUnavailable(f"cannot read {self.stream}: {exc}") from exc

    def _read(self, group: str, consumer: str, count: int, block_ms: int) -> list[Message]:
        key = (group, consumer)
        if key not in self._recovered:
            after = self._recovery_cursor.get(key, "0")
            own = self._reader.xreadgroup(group, consumer, {self.stream: after}, count=count)
            entries = own[0][1] if own else []
            if entries:
                self._recovery_cursor[key] = _id(entries[-1][0])
                messages = _messages(own)
                if messages:
                    return messages
            else:
                self._recovered.add(key)
        fresh = self._reader.xreadgroup(group, consumer, {self.stream: ">"}, count=count,
                                        block=block_ms or None)
        return _messages(fresh)

    def ack(self, group: str, messages: list[Message]) -> None:
        if not messages:
            return
        try:  # with the group gone there is nothing to acknowledge: the new group re-reads
            self._recreating_group(group, lambda: self.client.xack(
                self.stream, group, *[m.id for m in messages]))
        except redis.RedisError as exc:
            raise BusUnavailable(f"cannot acknowledge on {self.stream}: {exc}") from exc

    def reclaim(self, group: str, consumer: str, min_idle_ms: int, count: int) -> list[Message]:
        def claim():
            return self.client.xautoclaim(self.stream, group, consumer, min_idle_ms,
                                          start_id="0-0", count=count)
        try:
            _, claimed, *_ = self._recreating_group(group, claim)
        except redis.RedisError as exc:
            raise BusUnavailable(f"cannot reclaim on {self.stream}: {exc}") from exc
        return [Message(_id(entry_id), orjson.loads(fields[b"e"]))
                for entry_id, fields in claimed if fields]

    def pending(self, group: str) -> int:
        summary = self._recreating_group(group, lambda: self.client.xpending(self.stream, group))
        return int(summary["pending"])

    def lag(self, group: str) -> int:
        """Entries not yet delivered to the group plus those delivered but not acked."""
        self.ensure_group(group)
        info = {g["name"].decode(): g for g in self.client.xinfo_groups(self.stream)}
        if group not in info:  # lost with its data: the recreated group must read it all
            self._groups.discard(group)
            self.ensure_group(group)
            return self.lag(group)
        entry = info[group]
        undelivered = entry.get("lag")
        if undelivered is None:  # Redis cannot tell after deletions: the stream bounds it
            undelivered = self.client.xlen(self.stream)
        return int(undelivered) + int(entry["pending"])

    def trim(self) -> int:
        """Drop entries every group has acknowledged; returns how many were removed. The
        workers call it continuously (`GroupReader`); a stream without groups keeps all."""
        try:
            return int(self._trim(keys=[self.stream]))
        except redis.RedisError as exc:
            raise BusUnavailable(f"cannot trim {self.stream}: {exc}") from exc

    def reset(self) -> None:
        """Delete the stream, its groups, dead letters and dedup keys (tests, benchmarks)."""
        keys = list(self.client.scan_iter(match=f"{self.seen_prefix}*", count=10_000))
        for start in range(0, len(keys), 10_000):
            self.client.delete(*keys[start:start + 10_000])
        self.client.delete(self.stream, self.dead_stream)
        self._groups.clear()
        self._recovered.clear()
        self._recovery_cursor.clear()


def _messages(response) -> list[Message]:
    """Raw XREADGROUP reply: [[stream, [[id, [field, value, ...]], ...]]]."""
    out = []
    for _stream, entries in response or []:
        for entry_id, fields in entries:
            if fields:  # an entry trimmed while pending comes back empty (nil)
                payload = fields[1] if fields[0] == b"e" else fields[fields.index(b"e") + 1]
                out.append(Message(entry_id.decode(), orjson.loads(payload)))
    return out


def _id(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
