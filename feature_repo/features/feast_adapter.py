"""The one place that touches Feast internals, checked against the Feast version it was
written for.

The fast paths (session rows written and read in Feast's exact Redis format, the provider's
online store, skipping a per-read optional-store probe) use private Feast names. They live
here, so a Feast upgrade is one file to re-read; `check_feast_version` refuses a Feast
release other than the one this adapter was checked against, with a message saying what
to do, instead of writing rows in a format the new Feast may not read.
"""
from __future__ import annotations

import feast
from feast import FeatureStore, FeatureView
from feast.infra.online_stores.helpers import _mmh3, _redis_key
from feast.infra.online_stores.redis import (
    RedisOnlineStore,
    RedisOnlineStoreConfig,
    RedisType,
    _versioned_fv_name,
)
from feast.infra.online_stores.sqlite import SqliteOnlineStore
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto

from recsys.core.errors import ConfigError

WRITTEN_FOR = "0.63"
"""Feast minor release whose storage format and private names this adapter was checked
against (setup.cfg pins the same range)."""


def check_feast_version(version: str | None = None) -> None:
    """Raise ConfigError unless the installed Feast is the minor release this was written for."""
    version = version or feast.__version__
    minor = ".".join(version.split(".")[:2])
    if minor != WRITTEN_FOR:
        raise ConfigError(
            f"feast {version} is installed; recsys.feature_repo.features.feast_adapter was "
            f"written for feast {WRITTEN_FOR}.x (Redis row format, private helpers). Install "
            f"feast=={WRITTEN_FOR}.* or re-check the adapter against the new release.")


check_feast_version()


def provider_online_store(store: FeatureStore):
    """The online-store object of the store's provider (Feast keeps it private)."""
    return store._get_provider().online_store


def provider(store: FeatureStore):
    """The store's provider (for `online_write_batch` without `push`'s per-call overhead)."""
    return store._get_provider()


def plain_redis_client(store: FeatureStore):
    """Feast's own Redis client when the online store is a plain (non-cluster) Redis, else
    None: the row writer and reader are only written for that layout."""
    config = store.config.online_store
    if not isinstance(config, RedisOnlineStoreConfig) or config.redis_type != RedisType.redis:
        return None
    return provider_online_store(store)._get_client(config)


def skip_versioned_read_probe(store: FeatureStore) -> None:
    """Feast 0.63 re-tries importing optional online stores (MySQL, Milvus, FAISS, ...) on
    every read to learn which support versioned reads; the failed imports cost ~5 ms per
    call. SQLite and Redis are on its supported list, for which the check never raises, so
    it is skipped for exactly those two."""
    online = provider_online_store(store)
    if isinstance(online, (SqliteOnlineStore, RedisOnlineStore)):
        # an entry of the instance's own dict shadows the class's method, for this store only
        vars(online)["_check_versioned_read_support"] = lambda grouped_refs: None


def view_storage_name(view: FeatureView, repo_config) -> str:
    """The name Feast's Redis store files a view's fields under."""
    return _versioned_fv_name(view, repo_config)


def redis_field(view_name: str, feature: str) -> bytes:
    """The hash field of one feature in Feast's Redis row (`mmh3("<view>:<feature>")`)."""
    return _mmh3(f"{view_name}:{feature}")


def redis_timestamp_field(view_name: str) -> str:
    """The hash field holding the row's event timestamp (a serialised protobuf Timestamp)."""
    return f"_ts:{view_name}"


def redis_entity_key(project: str, entity_key: EntityKeyProto, key_version: int) -> bytes:
    """The Redis key of one entity's hash in Feast's format."""
    return _redis_key(project, entity_key, key_version)
