"""Assemble the service from settings: model source, catalogue, features, cache, metrics."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from recsys.core.errors import NotFoundError
from recsys.core.online.catalogue import Catalogue
from recsys.core.settings import Settings, load_settings
from recsys.serving.cache import RecommendationCache
from recsys.serving.collaborators import (
    ExperimentRoutes,
    FlushedOnClose,
    KeptOpen,
    SessionSource,
)
from recsys.serving.config import ServiceConfig
from recsys.serving.live_rules import LiveRules
from recsys.serving.metrics import ServiceMetrics
from recsys.serving.model_source import ModelSource
from recsys.serving.service import RecommendationService

if TYPE_CHECKING:
    from recsys.core.data.lake import Lake
    from recsys.core.models.base import Recommender

log = logging.getLogger(__name__)


def build_service(options: Mapping[str, object] | None = None) -> RecommendationService:
    """Options are ServiceConfig fields (from model-settings.json `parameters.extra`);
    locations come from the RECSYS_* environment like everywhere else."""
    from recsys.core.data.lake import Lake
    from recsys.core.online.request_log import RequestLog, recently_active_users

    settings = load_settings()
    config = ServiceConfig(**(options or {}))
    lake = Lake(settings.lake, settings.s3_endpoint_url)
    source = ModelSource(settings.tracking_uri, settings.registered_model_name, config.model_uri,
                         baseline=lambda: popularity_baseline(lake),
                         model_sha256=config.model_sha256, model_version=config.model_version)
    source.load()
    if config.watch_seconds:
        source.watch(config.watch_seconds)
    catalogue = Catalogue.from_lake(lake)
    experiments = _experiment_router(settings, config, source)
    request_log = FlushedOnClose(RequestLog(lake, config.log_batch_size,
                                            config.log_flush_seconds)) \
        if config.log_requests or experiments is not None else None
    metrics = ServiceMetrics()
    rules = LiveRules(lake, config.rules_refresh_seconds,
                      on_error=lambda exc: metrics.degraded.labels("business_rules").inc())
    rules.refresh()
    rules.watch()
    service = RecommendationService(config, source, catalogue,
                                    _session_reader(settings, config, metrics),
                                    _cache(settings, config, metrics), metrics=metrics,
                                    request_log=request_log, experiments=experiments,
                                    rules=rules)
    source.before_swap = service.warm_version  # a promoted version answers warm
    try:  # a start warms the lists of who asked lately, as a promotion does
        service.recent_users.seed(recently_active_users(lake, config.warm_users))
    except Exception as exc:
        log.warning("request log unreadable, starting without warm lists: %s", exc)
    return service


def _experiment_router(settings: Settings, config: ServiceConfig,
                       source: ModelSource) -> ExperimentRoutes | None:
    """The online-experiment router of a registry-served champion, or of an exported
    experiment artifact; None for any other fixed model (an exported folder has no
    registry to read experiments from)."""
    if not config.experiments:
        return None
    if config.experiment_folder:
        from recsys.serving.experiment_artifact import artifact_router

        return artifact_router(config.experiment_folder, config.experiment_variants,
                               lambda: source.current, config.experiment_arm)
    if config.model_uri:
        return None
    from recsys.serving.experiment_router import ExperimentRouter
    from recsys.serving.registry_reads import RunningExperiments

    # read-only: serving never creates the tracking experiment (registry_reads.py)
    experiments = RunningExperiments(settings.tracking_uri, settings.registered_model_name)
    router = ExperimentRouter(experiments.running, source.load_version, lambda: source.current)
    try:
        router.refresh()
    except Exception as exc:  # the registry is out: start without, the watcher retries
        log.warning("running experiment not read: %s", exc)
    router.watch(config.experiment_watch_seconds)
    return router


def popularity_baseline(lake: Lake) -> Recommender:
    """The last-resort model: popularity from the lake's newest item_stats snapshot."""
    from recsys.core.data.feature_snapshots import read_latest
    from recsys.core.models.popularity import popularity_from_item_stats

    stats = read_latest(lake, "item_stats")
    if stats is None:
        raise NotFoundError(f"no item_stats snapshot in {lake.uri}: run the pipeline first")
    return popularity_from_item_stats(stats)


def _session_reader(settings: Settings, config: ServiceConfig,
                    metrics: ServiceMetrics | None = None) -> SessionSource | None:
    """The live session features; on a Redis online store its client fails fast (one
    attempt, `redis_timeout_seconds`): a down store costs a request one timeout, and after
    `redis_breaker_failures` in a row none until the breaker's trial finds it back."""
    try:
        from recsys.core.online.fail_fast_redis import make_fail_fast
        from recsys.feature_repo.features.feast_adapter import plain_redis_client
        from recsys.feature_repo.features.session_reader import SessionReader
        from recsys.feature_repo.features.store import open_store

        store, _ = open_store(settings)
        client = plain_redis_client(store)
        if client is not None:
            breaker = metrics.redis_breaker("online_store", config) \
                if metrics is not None else None
            make_fail_fast(client, config.redis_timeout_seconds, breaker)
        return KeptOpen(SessionReader(store))
    except Exception as exc:  # serve without session features rather than not at all
        log.warning("online features unavailable, serving without them: %s", exc)
        return None


def _cache(settings: Settings, config: ServiceConfig,
           metrics: ServiceMetrics) -> RecommendationCache:
    from recsys.core.online.fail_fast_redis import fail_fast_client

    client = fail_fast_client(settings.redis_url, config.redis_timeout_seconds,
                              metrics.redis_breaker("cache", config))
    return RecommendationCache(client, config.cache_ttl_seconds, namespace=settings.event_stream,
                               local_entries=config.cache_local_entries)
