"""Open the Feast store for a profile, apply the definitions, materialize."""
from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from string import Template
from urllib.parse import urlparse

import yaml
from feast import FeatureStore
from feast.repo_config import RepoConfig

from recsys.core.errors import ConfigError
from recsys.core.settings import Settings
from recsys.feature_repo.definitions import FeatureRepo, feature_definitions

log = logging.getLogger(__name__)
REPO_DIR = Path(__file__).resolve().parent
PROFILES = {"local": "feature_store.yaml", "production": "feature_store.production.yaml"}


def redis_connection_string(url: str) -> str:
    """`redis://host:port/db` -> Feast's `host:port,db=N` (password kept when present)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss"):
        raise ConfigError(f"REDIS_URL must be redis://host:port/db, got {url!r}")
    parts = [f"{parsed.hostname or '127.0.0.1'}:{parsed.port or 6379}"]
    db = (parsed.path or "/0").lstrip("/") or "0"
    parts.append(f"db={db}")
    if parsed.password:
        parts.append(f"password={parsed.password}")
    if parsed.scheme == "rediss":
        parts.append("ssl=true")
    return ",".join(parts)


def feature_tables_dir(settings: Settings) -> Path:
    """The lake's `features/` zone. Feast's file offline store reads local Parquet, so with
    an `s3://` lake the feature tables live under `<state dir>/feast/tables` instead."""
    if settings.lake.startswith("s3://"):
        return (settings.state_dir / "feast" / "tables").resolve()
    return Path(settings.lake) / "features"


def repo_config(settings: Settings, profile: str | None = None,
                redis_url: str | None = None) -> RepoConfig:
    """Render the profile's feature_store.yaml with this deployment's values."""
    profile = profile or settings.feast_profile
    if profile not in PROFILES:
        raise ConfigError(f"unknown Feast profile {profile!r}; profiles: {', '.join(PROFILES)}")
    feast_dir = (settings.state_dir / "feast").resolve()
    feast_dir.mkdir(parents=True, exist_ok=True)
    text = Template((REPO_DIR / PROFILES[profile]).read_text()).substitute(
        FEAST_DIR=feast_dir, FEAST_REGISTRY_URL=settings.feast_registry_url,
        REDIS_CONNECTION=redis_connection_string(redis_url or settings.redis_url),
        FEAST_KEY_TTL=settings.feast_key_ttl_seconds)
    raw = yaml.safe_load(text)
    return RepoConfig(repo_path=feast_dir, **raw)


def open_store(settings: Settings, profile: str | None = None,
               redis_url: str | None = None) -> tuple[FeatureStore, FeatureRepo]:
    """The store and the definitions over this lake's feature tables."""
    store = FeatureStore(config=repo_config(settings, profile, redis_url))
    _skip_version_check(store)
    return store, feature_definitions(feature_tables_dir(settings))


def _skip_version_check(store: FeatureStore) -> None:
    """Feast 0.63 re-tries importing optional online stores (MySQL, Milvus, FAISS, ...) on
    every read to learn which support versioned reads; the failed imports cost ~5 ms per
    call. SQLite and Redis are on its supported list, for which the check never raises, so
    it is skipped for exactly those two."""
    from feast.infra.online_stores.redis import RedisOnlineStore
    from feast.infra.online_stores.sqlite import SqliteOnlineStore

    online = store._get_provider().online_store
    if isinstance(online, (SqliteOnlineStore, RedisOnlineStore)):
        online._check_versioned_read_support = lambda grouped_refs: None


def apply_repo(store: FeatureStore, repo: FeatureRepo) -> None:
    """Register (or update) every definition; idempotent."""
    store.apply(repo.objects)
    log.info("feast: applied %d objects to project %s", len(repo.objects),
             store.config.project)


def materialize(store: FeatureStore, end: datetime, views: list[str] | None = None) -> None:
    """Load batch features newer than the last materialization up to `end` into the online
    store (incremental: each view remembers how far it got)."""
    store.materialize_incremental(end_date=end, feature_views=views)
