"""Prometheus metrics of the service (one registry per service instance)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.requests = Counter("recsys_requests_total", "Requests by endpoint and outcome",
                                ["endpoint", "outcome"], registry=self.registry)
        self.latency = Histogram("recsys_request_seconds", "Request latency by endpoint",
                                 ["endpoint"], registry=self.registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, 1))
        self.fallbacks = Counter("recsys_fallback_total", "Answers from a fallback path",
                                 ["path"], registry=self.registry)
        self.cache = Counter("recsys_cache_total", "Cache lookups", ["result"],
                             registry=self.registry)
        self.degraded = Counter("recsys_degraded_total", "Dependencies skipped after a failure",
                                ["dependency"], registry=self.registry)
        self.model_version = Gauge("recsys_model_version", "Model version being served",
                                   registry=self.registry)
        self.fallback_model = Gauge("recsys_serving_fallback_model",
                                    "1 while serving a version other than the champion "
                                    "(the champion failed to load or its smoke test)",
                                    registry=self.registry)
