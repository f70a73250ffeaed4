"""Prometheus metrics of the service (one registry per service instance).

Besides health (requests, latency, fallbacks, cache), what the business dashboard needs of
the lists served: items shown, intra-list category diversity, and catalogue coverage (the
share of the catalogue's items shown at least once in the current hour).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from recsys.core.online.fail_fast_redis import CLOSED, OPEN, CircuitBreaker

if TYPE_CHECKING:
    from recsys.serving.config import ServiceConfig
    from recsys.serving.experiment_router import ActiveExperiment
    from recsys.serving.model_source import RegistryHealth

COVERAGE_WINDOW_SECONDS = 3600


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter("recsys_requests_total", "Requests by endpoint and outcome",
                                ["endpoint", "outcome"], registry=self.registry)
        self.latency = Histogram("recsys_request_duration_seconds", "Request latency by endpoint",
                                 ["endpoint"], registry=self.registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, 1))
        self.fallbacks = Counter("recsys_fallback_total", "Answers from a fallback path",
                                 ["path"], registry=self.registry)
        self.cache = Counter("recsys_cache_total", "Cache lookups", ["result"],
                             registry=self.registry)
        self.degraded = Counter("recsys_degraded_total", "Dependencies skipped after a failure",
                                ["dependency"], registry=self.registry)
        self.breaker_opens = Counter("recsys_redis_breaker_opens_total",
                                     "Times requests started skipping an unreachable Redis "
                                     "(cache or online store)", ["dependency"],
                                     registry=self.registry)
        self.breaker_open = Gauge("recsys_redis_breaker_open",
                                  "1 while requests skip that Redis (open or half-open "
                                  "breaker)", ["dependency"], registry=self.registry)
        self.model_info = Gauge("recsys_model_info", "1 for the model version being served "
                                "(label `version`: the registry version or the fixed path)",
                                ["version"], registry=self.registry)
        self.fallback_model = Gauge("recsys_serving_fallback_model",
                                    "1 while serving a version other than the champion "
                                    "(the champion failed to load or its smoke test)",
                                    registry=self.registry)
        self.items_served = Counter("recsys_items_served_total",
                                    "Items in the lists answered (impressions offered)",
                                    registry=self.registry)
        self.diversity = Histogram("recsys_list_category_diversity",
                                   "Distinct categories / items of an answered list (lists of "
                                   "2+ items whose categories are known)", registry=self.registry,
                                   buckets=(.1, .2, .3, .4, .5, .6, .7, .8, .9, 1.0))
        self.coverage = Gauge("recsys_catalogue_coverage",
                              "Share of the catalogue's items shown at least once in the "
                              "current hour", registry=self.registry)
        self._coverage = CoverageWindow(COVERAGE_WINDOW_SECONDS)
        self.exposures = Counter("recsys_experiment_exposures_total",
                                 "Lists answered inside an experiment, by variant",
                                 ["experiment", "variant"], registry=self.registry)
        self.forwarded = Counter("recsys_experiment_forwarded_total",
                                 "Requests one arm's server forwarded to the arm of the user's "
                                 "variant, by outcome (ok, failed)",
                                 ["experiment", "variant", "outcome"], registry=self.registry)
        self.experiment_running = Gauge("recsys_experiment_running",
                                        "1 while a running experiment is applied (0: none "
                                        "runs, or it could not be applied: see the log)",
                                        registry=self.registry)
        self.experiment_model_bytes = Gauge("recsys_experiment_model_bytes",
                                            "Memory of each variant's model (arrays)",
                                            ["variant"], registry=self.registry)
        # registry gauges are exported from their first known value on (absent before:
        # an alert on an age must never see 0, i.e. 1970)
        self._registry_gauges = {
            "drift_detected": Gauge(
                "recsys_champion_drift_detected", "1 when the last monitoring run found drift "
                "against the champion's training data", registry=None),
            "monitored_at": Gauge(
                "recsys_champion_monitored_timestamp_seconds",
                "When monitoring last judged the champion (epoch s)", registry=None),
            "newest_version_registered_at": Gauge(
                "recsys_registry_newest_version_timestamp_seconds",
                "When the newest model version was registered: every training run "
                "registers one (epoch s)", registry=None)}
        self._exported: set[str] = set()

    def redis_breaker(self, dependency: str, config: ServiceConfig) -> CircuitBreaker:
        """The circuit breaker of one Redis on the request path (`cache`, `online_store`),
        exported as `recsys_redis_breaker_*`."""
        self.breaker_open.labels(dependency).set(0)
        self.breaker_opens.labels(dependency)  # exported from 0 on

        def changed(state: str) -> None:
            self.breaker_open.labels(dependency).set(0 if state == CLOSED else 1)
            if state == OPEN:
                self.breaker_opens.labels(dependency).inc()

        return CircuitBreaker(f"Redis ({dependency})", config.redis_breaker_failures,
                              config.redis_breaker_cool_down_seconds, on_change=changed)

    def observe_model(self, version: str) -> None:
        """Export the served version as `recsys_model_info{version="..."} 1` (one series)."""
        self.model_info.clear()
        self.model_info.labels(version).set(1)

    def observe_registry(self, health: RegistryHealth) -> None:
        """Set the registry gauges from `ModelSource.registry_health` (unknown: left as is)."""
        for key, gauge in self._registry_gauges.items():
            value = health.get(key)
            if value is None:
                continue
            if key not in self._exported:
                self.registry.register(gauge)
                self._exported.add(key)
            gauge.set(float(value))

    def observe_experiment(self, active: ActiveExperiment | None) -> None:
        """Export what the experiment router applies (None: no experiment)."""
        self.experiment_running.set(0 if active is None else 1)
        self.experiment_model_bytes.clear()
        for variant, size in (active.model_bytes if active else {}).items():
            self.experiment_model_bytes.labels(variant).set(size)

    def observe_list(self, item_ids: list[str], categories: dict[str, str]) -> None:
        """Count an answered list: items shown, category diversity, catalogue coverage."""
        self.items_served.inc(len(item_ids))
        known = [categories[i] for i in item_ids if i in categories]
        if len(known) >= 2:
            self.diversity.observe(len(set(known)) / len(known))
        if categories:
            self.coverage.set(self._coverage.add(item_ids, categories))


class CoverageWindow:
    """Items of the catalogue shown since the window started; restarts every `seconds`.
    Bounded by the catalogue: only its items are kept."""

    def __init__(self, seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds, self.clock = seconds, clock
        self._started = clock()
        self._shown: set[str] = set()
        self._lock = threading.Lock()

    def add(self, item_ids: list[str], catalogue: dict[str, str]) -> float:
        with self._lock:
            if self.clock() - self._started >= self.seconds:
                self._started, self._shown = self.clock(), set()
            self._shown.update(i for i in item_ids if i in catalogue)
            return len(self._shown) / len(catalogue)
