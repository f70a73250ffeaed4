"""The lake's size per zone and what retention deleted, as Prometheus metrics pushed to the
Pushgateway (the monitoring pipeline's retention step, `recsys lake retain`).

One group, `job="recsys-lake"`, replaced by each push:
- `recsys_lake_size_bytes{zone}` and `recsys_lake_objects{zone}`: the whole lake after the
  run, per zone (raw, clean, quarantine, request_log, reports, other);
- `recsys_lake_retention_deleted_partitions{zone}` and
  `recsys_lake_retention_deleted_bytes{zone}`: what the run deleted;
- `recsys_lake_retention_last_run_timestamp_seconds`.
A push that fails is logged, never raised: reporting must not fail the step.
"""
from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

log = logging.getLogger(__name__)
JOB = "recsys-lake"


def lake_registry(report: dict, finished_at: float | None = None) -> CollectorRegistry:
    """The metrics of a `recsys.core.data.retention.retain` report."""
    registry = CollectorRegistry()
    size = Gauge("recsys_lake_size_bytes", "Bytes of the lake per zone", ["zone"],
                 registry=registry)
    objects = Gauge("recsys_lake_objects", "Objects (files) of the lake per zone", ["zone"],
                    registry=registry)
    for zone, measured in report["sizes"].items():
        size.labels(zone).set(measured["bytes"])
        objects.labels(zone).set(measured["objects"])
    partitions = Gauge("recsys_lake_retention_deleted_partitions",
                       "Date partitions the last retention run deleted", ["zone"],
                       registry=registry)
    deleted = Gauge("recsys_lake_retention_deleted_bytes",
                    "Bytes the last retention run deleted", ["zone"], registry=registry)
    for zone, went in report["zones"].items():
        gone = not report["dry_run"]
        partitions.labels(zone).set(len(went["partitions"]) if gone else 0)
        deleted.labels(zone).set(went["bytes"] if gone else 0)
    Gauge("recsys_lake_retention_last_run_timestamp_seconds",
          "When the last retention run finished (epoch s)", registry=registry).set(
        finished_at if finished_at is not None else time.time())
    return registry


def push_lake_report(url: str | None, report: dict, timeout: float = 10.0) -> bool:
    """Push a retention report's metrics to the Pushgateway at `url`; False when unset, a
    dry run, or the push failed."""
    if not url or report["dry_run"]:
        return False
    try:
        push_to_gateway(url, job=JOB, registry=lake_registry(report), timeout=timeout)
    except OSError as error:
        log.error("lake retain: could not push the lake's sizes to %s: %s", url, error)
        return False
    log.info("lake retain: pushed the lake's sizes to %s", url)
    return True
