"""Open the Feast store for a profile, apply the definitions, materialize."""
from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path
from string import Template
from urllib.parse import urlparse

import yaml
from feast import FeatureStore
from feast.repo_config import RepoConfig

from recsys.core.data.feature_snapshots import FEATURES_ZONE
from recsys.core.data.lake import Lake
from recsys.core.data.spark.session import python_workers_use_this_interpreter, spark_conf
from recsys.core.errors import ConfigError
from recsys.core.settings import Settings
from recsys.feature_repo.features.definitions import FeatureRepo, feature_definitions
from recsys.feature_repo.features.feast_adapter import skip_versioned_read_probe

log = logging.getLogger(__name__)
REPO_DIR = Path(__file__).resolve().parents[1]  # feature_repo/, where the profiles are
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


def offline_lake(settings: Settings) -> Lake:
    """Where Feast's offline store reads the feature tables: the lake itself (a folder, or
    `s3://` read in place through s3fs). Only Feast's Spark offline store on a remote lake
    reads a copy under `<state dir>/feast/offline`: the PySpark wheel has no S3A connector
    (docs/spark.md)."""
    lake = Lake(settings.lake, settings.s3_endpoint_url)
    if lake.is_remote and settings.feast_offline_store == "spark":
        return Lake(str((settings.state_dir / "feast" / "offline").resolve()))
    return lake


def feature_tables_dir(settings: Settings) -> str:
    """The folder (or `s3://` prefix) holding one sub-folder per feature table, as Feast's
    sources name it."""
    return offline_lake(settings).url(FEATURES_ZONE)


def repo_definitions(settings: Settings) -> FeatureRepo:
    """The repository's objects over this deployment's feature tables and offline store."""
    return feature_definitions(feature_tables_dir(settings), settings.feast_offline_store,
                               settings.s3_endpoint_url)


def repo_config(settings: Settings, profile: str | None = None,
                redis_url: str | None = None) -> RepoConfig:
    """Render the profile's feature_store.yaml with this deployment's values."""
    profile = profile or settings.feast_profile
    if profile not in PROFILES:
        raise ConfigError(f"unknown Feast profile {profile!r}; profiles: {', '.join(PROFILES)}")
    feast_dir = (settings.state_dir / "feast").resolve()
    feast_dir.mkdir(parents=True, exist_ok=True)
    text = Template((REPO_DIR / PROFILES[profile]).read_text()).substitute(
        FEAST_REGISTRY_URL=settings.feast_registry_url,
        REDIS_CONNECTION=redis_connection_string(redis_url or settings.redis_url),
        FEAST_KEY_TTL=settings.feast_key_ttl_seconds)
    raw = yaml.safe_load(text)
    if raw["registry"]["registry_type"] == "file":
        raw["registry"]["path"] = str(feast_dir / "registry.db")
    if raw["online_store"]["type"] == "sqlite":
        raw["online_store"]["path"] = str(feast_dir / "online.db")
    if settings.feast_offline_store == "spark":
        python_workers_use_this_interpreter()  # Feast starts the session, not the engine
        conf = spark_conf(settings)
        raw["offline_store"] = {"type": "spark", "spark_conf": conf}
        raw["batch_engine"] = {"type": "spark.engine", "spark_conf": conf}
    return RepoConfig(repo_path=feast_dir, **raw)


def open_store(settings: Settings, profile: str | None = None,
               redis_url: str | None = None) -> tuple[FeatureStore, FeatureRepo]:
    """The store and the definitions over this lake's feature tables."""
    config = repo_config(settings, profile, redis_url)
    store = _racing_writers(lambda: FeatureStore(config=config))
    skip_versioned_read_probe(store)
    return store, repo_definitions(settings)


def apply_repo(store: FeatureStore, repo: FeatureRepo) -> None:
    """Register (or update) every definition; idempotent."""
    _racing_writers(lambda: store.apply(repo.objects))
    log.info("feast: applied %d objects to project %s", len(repo.objects),
             store.config.project)


DUPLICATE_TABLE, DUPLICATE_OBJECT = "42P07", "42710"
"""PostgreSQL's codes for a CREATE that lost a race with another session's CREATE."""


def _racing_writers(action, attempts: int = 6):
    """Run `action`, again when another process won a race on the SQL registry: workers
    starting together (a StatefulSet's pods) both create its tables or insert the same
    definition, and the loser gets a unique violation, or a duplicate table when both saw
    the table missing and created it (SQLAlchemy checks, then creates); the winner's rows
    are what it wanted (checked again on the next try)."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(attempts):
        try:
            return action()
        except (IntegrityError, ProgrammingError) as exc:
            lost_a_race = isinstance(exc, IntegrityError) or getattr(
                exc.orig, "pgcode", None) in (DUPLICATE_TABLE, DUPLICATE_OBJECT)
            if not lost_a_race or attempt == attempts - 1:
                raise
            log.info("feast registry: another writer got there first (%s); trying again",
                     type(exc.orig).__name__ if exc.orig is not None else exc)
            time.sleep(0.2 * (attempt + 1))


def materialize(store: FeatureStore, end: datetime, views: list[str] | None = None) -> None:
    """Load batch features newer than the last materialization up to `end` into the online
    store (incremental: each view remembers how far it got)."""
    store.materialize_incremental(end_date=end, feature_views=views)
