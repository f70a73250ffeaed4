"""Rows of one feature view in Feast's Redis online store: written with one script call per
batch, read with one HMGET.

Feast's `RedisOnlineStore.online_write_batch` sends an HMGET per row, compares timestamps in
Python, then an HSET and an EXPIRE per row (three commands and two round trips per row; at
a stream processor's rate the client-side command handling is most of its time). This
writer keeps Feast's storage format exactly (`feast_adapter`: the same hash per entity
key, the same field names `mmh3("<view>:<feature>")` and `_ts:<view>`), the same
serialised `Value` and `Timestamp` protos, the same key TTL - and the same newer-wins rule
(a row is written only when its timestamp is later than the stored one), but does the
comparison inside Redis: atomic per key, and one command for the whole batch.
`RedisRowReader` reads one entity's row of the view the way Feast's `online_read` does (one
HMGET of the view's fields and timestamp) without Feast's per-request Python around it.

Only the plain `redis` type is handled; cluster and sentinel stores go through Feast.
"""
from __future__ import annotations

from datetime import datetime

from feast import FeatureStore, FeatureView
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.utils import make_tzaware
from google.protobuf.timestamp_pb2 import Timestamp

from recsys.feature_repo.features.feast_adapter import (
    plain_redis_client,
    redis_entity_key,
    redis_field,
    redis_timestamp_field,
    view_storage_name,
)

# KEYS: one Feast entity key per row.
# ARGV: ts field, key ttl (0: none), number of features F, the F field names, then per row:
# seconds, nanos, serialised Timestamp, F serialised values.
# A stored `_ts:<view>` is a protobuf Timestamp: field 1 (tag 0x08) seconds, field 2 (tag
# 0x10) nanos, both varints.
WRITE_ROWS_SCRIPT = """
local function varint(s, pos)
  local value, scale = 0, 1
  while true do
    local byte = string.byte(s, pos)
    value = value + (byte % 128) * scale
    pos = pos + 1
    if byte < 128 then return value, pos end
    scale = scale * 128
  end
end
local function stamp(s)
  local seconds, nanos, pos = 0, 0, 1
  while pos <= #s do
    local tag = string.byte(s, pos)
    local value
    value, pos = varint(s, pos + 1)
    if tag == 8 then seconds = value elseif tag == 16 then nanos = value end
  end
  return seconds, nanos
end
local ts_field, ttl, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local at, written = 4 + n, 0
for i = 1, #KEYS do
  local seconds, nanos = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
  local newer = true
  local previous = redis.call('HGET', KEYS[i], ts_field)
  if previous then
    local old_seconds, old_nanos = stamp(previous)
    if (old_seconds > 0 or old_nanos > 0) and
       (seconds < old_seconds or (seconds == old_seconds and nanos <= old_nanos)) then
      newer = false
    end
  end
  if newer then
    local fields = {ts_field, ARGV[at + 2]}
    for f = 1, n do
      fields[#fields + 1] = ARGV[3 + f]
      fields[#fields + 1] = ARGV[at + 2 + f]
    end
    redis.call('HSET', KEYS[i], unpack(fields))
    if ttl > 0 then redis.call('EXPIRE', KEYS[i], ttl) end
    written = written + 1
  end
  at = at + 3 + n
end
return written
"""
KEY_CACHE_SIZE = 200_000


def redis_row_writer(store: FeatureStore, view: FeatureView) -> RedisRowWriter | None:
    """A writer for `view` when the store's online store is a plain Redis, else None."""
    client = plain_redis_client(store)
    return None if client is None else RedisRowWriter(client, store.config, view)


def redis_row_reader(store: FeatureStore, view: FeatureView) -> RedisRowReader | None:
    """A reader for `view` when the store's online store is a plain Redis, else None."""
    client = plain_redis_client(store)
    return None if client is None else RedisRowReader(client, store.config, view)


class _ViewRows:
    """Where Feast keeps one view's rows: entity keys, field names, timestamp field."""

    def __init__(self, client, repo_config, view: FeatureView):
        self.client = client
        self.project = repo_config.project
        self.key_version = repo_config.entity_key_serialization_version
        view_name = view_storage_name(view, repo_config)
        self.ts_field = redis_timestamp_field(view_name)
        self.features = [f.name for f in view.features]
        self.fields = [redis_field(view_name, name) for name in self.features]
        self._keys: dict[bytes, bytes] = {}

    def _key(self, entity_key: EntityKeyProto) -> bytes:
        cache_key = entity_key.SerializeToString()  # C-level; Feast's encoding is Python
        key = self._keys.get(cache_key)
        if key is None:
            if len(self._keys) >= KEY_CACHE_SIZE:
                self._keys.clear()
            key = self._keys[cache_key] = redis_entity_key(self.project, entity_key,
                                                          self.key_version)
        return key


class RedisRowReader(_ViewRows):
    def read(self, entity_key: EntityKeyProto) -> tuple[Timestamp, dict[str, ValueProto]] | None:
        """(the row's event timestamp, {feature: value}) or None when the entity has no row
        of this view."""
        raw = self.client.hmget(self._key(entity_key), [self.ts_field, *self.fields])
        if all(value is None for value in raw):
            return None
        stamp = Timestamp()
        if raw[0]:
            stamp.ParseFromString(raw[0])
        values = {}
        for name, blob in zip(self.features, raw[1:]):
            value = ValueProto()
            if blob:
                value.ParseFromString(blob)
            values[name] = value
        return stamp, values


class RedisRowWriter(_ViewRows):
    def __init__(self, client, repo_config, view: FeatureView):
        super().__init__(client, repo_config, view)
        self.ttl = repo_config.online_store.key_ttl_seconds or 0
        self._script = client.register_script(WRITE_ROWS_SCRIPT)

    def write(self, data: list[tuple]) -> int:
        """`data` as Feast's online_write_batch takes it; returns the rows written (rows
        not newer than the stored ones are skipped)."""
        if not data:
            return 0
        keys = [self._key(entity_key) for entity_key, _, _, _ in data]
        args: list = [self.ts_field, self.ttl, len(self.fields), *self.fields]
        stamps: dict[datetime, tuple] = {}
        for _, values, timestamp, _ in data:
            if timestamp not in stamps:
                stamps[timestamp] = _stamp(timestamp)
            args += stamps[timestamp]
            args += [values[name].SerializeToString() for name in self.features]
        return int(self._script(keys=keys, args=args))


def _stamp(timestamp: datetime) -> tuple[int, int, bytes]:
    proto = Timestamp()
    proto.FromDatetime(make_tzaware(timestamp))
    return proto.seconds, proto.nanos, proto.SerializeToString()
