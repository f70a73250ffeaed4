"""Prometheus metrics of the real-time path, read at scrape time.

The collector, processor and sink already count what they do (their `*Counters` /
`*Stats`); this collector turns those counts into Prometheus families when Prometheus
scrapes `GET /metrics` on the collector, so the hot paths pay nothing for metrics. With
`recsys stream up` the processor and sink run in the same process and are included; the
consumer lag of every group is read from the bus at scrape time, so it shows the progress
of workers in other processes too.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, TimeoutError
from dataclasses import dataclass
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


class CollectorCounts(Protocol):
    """What the collector counts (`collector.CollectorCounters`)."""

    requests: int
    accepted: int
    duplicates: int
    rejected: int
    anonymized: int
    unauthorized: int
    rate_limited: int
    unavailable: int
    rejected_by_field: dict[str, int]
    valid_by_type: dict[str, int]


class ProcessorCounts(Protocol):
    """What the session processor counts (`processor.ProcessorStats`)."""

    applied: int
    duplicates: int
    late: int
    users_pushed: int
    batches: int
    seconds: float
    freshness_seconds: float | None


class SinkCounts(Protocol):
    """What the lake sink counts (`lake_sink.SinkStats`)."""

    written: int
    duplicates: int
    files: int
    flushes: int
    seconds: float


@dataclass
class StreamSources:
    """What the metrics read: the collector's counters, the bus, the consumer groups, and
    (under `stream up`) the workers' stats and supervisor status."""

    counters: CollectorCounts | None
    bus: object
    groups: tuple[str, ...]
    processor_stats: ProcessorCounts | None = None
    sink_stats: SinkCounts | None = None
    workers: Callable[[], dict] | None = None
    dead_letters: bool = True
    """Report the bus's dead-letter stream (the collector's view; not a worker's)."""


class StreamMetrics(Collector):
    def __init__(self, sources: StreamSources, bus_timeout: float = 0.5):
        self.sources = sources
        self.bus_timeout = bus_timeout
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bus-probe")
        self._probe: Future | None = None
        self._probe_lock = threading.Lock()

    def _read_bus(self) -> tuple[dict, int | None]:
        s = self.sources
        lags, dead = {}, None
        if hasattr(s.bus, "lag"):  # Redis Streams and Kafka both report it
            for group in s.groups:
                lags[(group,)] = s.bus.lag(group)
        if s.dead_letters and hasattr(s.bus, "dead_letter_count"):
            dead = s.bus.dead_letter_count()
        return lags, dead

    def collect(self) -> Iterator:
        s = self.sources
        if s.counters is not None:
            yield from _collector_families(s.counters)
        yield from self._bus()
        if s.processor_stats is not None:
            p = s.processor_stats
            yield _counter("recsys_processor_events", "Events the session processor read",
                           {("applied",): p.applied, ("duplicate",): p.duplicates,
                            ("late",): p.late}, ["outcome"])
            yield _counter("recsys_processor_users_pushed",
                           "Session feature rows written to the online store",
                           {(): p.users_pushed})
            yield _summary("recsys_processor_batch_seconds",
                           "Time to process a batch (read excluded)", p.batches, p.seconds)
            if p.freshness_seconds is not None:
                yield _gauge("recsys_processor_freshness_seconds",
                             "Last batch: its newest event's time until its features were "
                             "online", {(): p.freshness_seconds})
        if s.sink_stats is not None:
            k = s.sink_stats
            yield _counter("recsys_sink_rows", "Events the lake sink handled",
                           {("written",): k.written, ("duplicate",): k.duplicates},
                           ["outcome"])
            yield _counter("recsys_sink_files", "Parquet files written", {(): k.files})
            yield _summary("recsys_sink_flush_seconds",
                           "Time to write a buffer to the lake and acknowledge it",
                           k.flushes, k.seconds)
        if s.workers is not None:
            status = s.workers()
            yield _gauge("recsys_stream_worker_up", "1 while the worker runs",
                         {(n,): int(w["running"]) for n, w in status.items()}, ["worker"])
            yield _counter("recsys_stream_worker_restarts", "Worker restarts after a failure",
                           {(n,): w["restarts"] for n, w in status.items()}, ["worker"])

    def _bus(self) -> Iterator:
        """Lag and dead letters, read within `bus_timeout` seconds: a scrape must answer (and
        say the bus is down) even when the bus hangs or its client retries for seconds."""
        lags, up, dead = {}, 0, None
        with self._probe_lock:
            if self._probe is None or self._probe.done():  # at most one probe in flight
                self._probe = self._executor.submit(self._read_bus)
            probe = self._probe
        try:
            lags, dead = probe.result(timeout=self.bus_timeout)
            up = 1
        except TimeoutError:
            log.warning("stream metrics: the bus did not answer within %.1f s",
                        self.bus_timeout)
        except Exception as exc:  # a scrape must answer even when the bus does not
            log.warning("stream metrics: bus unavailable: %s", exc)
        yield _gauge("recsys_stream_bus_up", "1 when the event bus answered this scrape",
                     {(): up})
        yield _gauge("recsys_stream_lag", "Events not yet acknowledged, per consumer group",
                     lags, ["group"])
        if dead is not None:
            yield _gauge("recsys_stream_dead_letters",
                         "Refused events in the dead-letter stream, not yet in the lake's "
                         "quarantine (capped)", {(): dead})


def _collector_families(counters: CollectorCounts) -> Iterator:
    yield _counter("recsys_collector_requests", "POST /events requests",
                   {(): counters.requests})
    yield _counter("recsys_collector_events", "Events by outcome", {
        ("accepted",): counters.accepted, ("duplicate",): counters.duplicates,
        ("rejected",): counters.rejected, ("anonymized",): counters.anonymized},
        ["outcome"])
    yield _counter("recsys_collector_refused_requests", "Requests refused whole, by reason",
                   {("unauthorized",): counters.unauthorized,
                    ("rate_limited",): counters.rate_limited,
                    ("bus_unavailable",): counters.unavailable}, ["reason"])
    yield _counter("recsys_collector_rejected_events",
                   "Events refused (422, dead-lettered) by the field at fault",
                   {(name,): count for name, count in counters.rejected_by_field.items()},
                   ["field"])
    yield _counter("recsys_collector_valid_events",
                   "Valid events by type (views, clicks, carts, purchases, searches): the "
                   "business dashboard's rates", {(kind,): count for kind, count
                                                 in counters.valid_by_type.items()},
                   ["event_type"])


def _summary(name: str, doc: str, count: int, total: float):
    return SummaryMetricFamily(name, doc, count_value=count, sum_value=total)


def _counter(name: str, doc: str, values: dict, labels: list[str] | None = None):
    family = CounterMetricFamily(name, doc, labels=labels or [])
    for key, value in values.items():
        family.add_metric(list(key), float(value))
    return family


def _gauge(name: str, doc: str, values: dict, labels: list[str] | None = None):
    family = GaugeMetricFamily(name, doc, labels=labels or [])
    for key, value in values.items():
        family.add_metric(list(key), float(value))
    return family
