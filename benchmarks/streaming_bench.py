"""`recsys bench streaming`: collector, processor and sink throughput, Parquet-vs-NDJSON size,
and freshness (event accepted -> feature readable through Feast) at a fixed 5k events/s.

Everything runs on this machine against the local Redis: the collector as its own process
(uvicorn), Feast in the production profile (Redis online store, PostgreSQL registry).
"""
from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import orjson
import pandas as pd

from recsys.benchmarks.machine import write_result
from recsys.benchmarks.streaming_scale import (
    collector_rates,
    processor_scaling,
    shop_templates,
    sustained,
)
from recsys.core.data.synthetic.config import ShopConfig
from recsys.core.data.synthetic.generate import generate_shop, write_shop
from recsys.core.online.heap_policy import batch_worker_heap
from recsys.core.settings import Settings
from recsys.streaming.lake_sink import SinkConfig
from recsys.streaming.processor import ProcessorConfig
from recsys.streaming.replay import batches
from recsys.streaming.runtime import build_bus, build_processor, build_sink
from recsys.tools.local_services import temporary_postgres_database, wait_for_http

log = logging.getLogger(__name__)

EVENTS = 200_000
BATCH = 100
CLIENTS = 4
FRESHNESS_RATE = 10_000
FRESHNESS_SECONDS = 30
PROBE_TIMEOUT_SECONDS = 10.0
BENCH_WRITE_KEY = "bench-write-key"
HEADERS = {"Content-Type": "application/x-ndjson", "Authorization": f"Bearer {BENCH_WRITE_KEY}"}
SCALE_EVENTS = 200_000
SUSTAINED_EVENTS = 5_000_000
TARGETS = {"collector_events_per_second": 10_000, "processor_events_per_second": 40_000,
           "collector_durable_events_per_second": 20_000, "freshness_p99_seconds": 1.0}
REPO = Path(__file__).resolve().parents[1]


@contextmanager
def worker_heap():
    """The workers' collector settings (`batch_worker_heap`) for a part of this process,
    then the previous ones again (the other benchmarks run in it too)."""
    thresholds = gc.get_threshold()
    batch_worker_heap()
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _start_collector(settings: Settings, port: int) -> subprocess.Popen:
    env = {**os.environ, "RECSYS_STATE_DIR": str(settings.state_dir),
           "RECSYS_EVENT_STREAM": settings.event_stream, "RECSYS_REDIS_URL": settings.redis_url,
           "RECSYS_COLLECTOR_WRITE_KEYS": BENCH_WRITE_KEY,
           "RECSYS_COLLECTOR_RATE_PER_SECOND": "1000000",
           "RECSYS_COLLECTOR_CLIENT_RATE_PER_SECOND": "1000000"}
    # the shared test Redis keeps nothing on disk: this measures the collector itself
    process = subprocess.Popen([sys.executable, "-m", "recsys.cli.main", "stream", "collector",
                                "--port", str(port), "--allow-volatile-bus"], env=env, cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_for_http(f"http://127.0.0.1:{port}/health", 60, process):
        process.kill()
        raise RuntimeError("collector did not start")
    return process


def _post_all(url: str, bodies: list[bytes]) -> float:
    headers = HEADERS

    def worker(chunk):
        with httpx.Client(timeout=30) as client:
            for body in chunk:
                response = client.post(url, content=body, headers=headers)
                if response.status_code != 202:
                    raise RuntimeError(f"collector answered {response.status_code}")

    chunks = [bodies[i::CLIENTS] for i in range(CLIENTS)]
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(worker, chunks))
    return time.perf_counter() - started


def _freshness(settings: Settings, url: str, source: Path, store
               ) -> tuple[list[float], int, int]:
    """Replay at FRESHNESS_RATE; every ~50 ms one just-accepted event is probed until Feast
    returns its user's features with last_event_ts at or after it (latencies, and how many
    probes gave up after PROBE_TIMEOUT_SECONDS - counted at that value, never dropped)."""
    from recsys.feature_repo.online import online_features

    probes: list[tuple[float, str, int]] = []
    done = threading.Event()
    skipped: list[str] = []

    def stored_second(user: str) -> int:
        value = online_features(store, [user]).users["user_session__last_event_ts"].iloc[0]
        if value is None or pd.isna(value):
            return -1
        return pd.Timestamp(value).value // 1_000_000_000

    def send():
        headers = HEADERS
        started = time.perf_counter()
        sent = 0
        with httpx.Client(timeout=30) as client:
            for batch in batches(source, BATCH):
                due = started + sent / FRESHNESS_RATE
                time.sleep(max(0.0, due - time.perf_counter()))  # one clock read: no race
                probe = None
                if not probes or time.perf_counter() - probes[-1][0] > 0.05:
                    last = orjson.loads(batch[-1])
                    user, wanted = str(last["user_id"]), int(last["timestamp"]) // 1000
                    # only events that must change what Feast shows: the user's stored
                    # last_event_ts (whole seconds) is older than this event before it is sent
                    if stored_second(user) < wanted:
                        probe = (user, wanted)
                    else:
                        skipped.append(user)
                client.post(url, content=b"\n".join(batch), headers=headers)
                accepted = time.perf_counter()
                sent += len(batch)
                if probe:
                    probes.append((accepted, *probe))
                if accepted - started > FRESHNESS_SECONDS:
                    break
        done.set()

    sender = threading.Thread(target=send)
    sender.start()
    seen, latencies, timed_out = 0, [], 0
    while not (done.is_set() and seen == len(probes)):
        if seen == len(probes):
            time.sleep(0.005)
            continue
        accepted, user, wanted = probes[seen]
        # Feast keeps UnixTimestamp features at whole seconds: compare at that precision
        visible = False
        while time.perf_counter() - accepted < PROBE_TIMEOUT_SECONDS:
            if stored_second(user) >= wanted:
                visible = True
                break
            time.sleep(0.002)
        latencies.append(time.perf_counter() - accepted)
        timed_out += not visible
        seen += 1
    sender.join()
    log.info("freshness: %d probes, %d events skipped (their second was already stored)",
             len(latencies), len(skipped))
    return latencies, timed_out, len(skipped)


def bench_streaming(events: int = EVENTS, sustained_events: int = SUSTAINED_EVENTS) -> dict:
    figures = _throughput_and_freshness(events)
    with tempfile.TemporaryDirectory(prefix="recsys-bench-scale-") as tmp, \
            temporary_postgres_database("feast_scale_bench") as registry_url:
        folder = Path(tmp)
        base = Settings(feast_profile="production", feast_registry_url=registry_url,
                        redis_url="redis://127.0.0.1:6379/9")
        templates = shop_templates(folder)
        try:
            log.info("streaming bench: collector on a durable and a volatile bus")
            figures.update(collector_rates(folder, base, templates, SCALE_EVENTS))
            log.info("streaming bench: 1 and 2 processors")
            figures.update(processor_scaling(folder, base, templates, SCALE_EVENTS))
            log.info("streaming bench: sustained run of %d events", sustained_events)
            figures.update(sustained(folder, base, templates, sustained_events))
        finally:
            build_bus(base).client.flushdb()
    figures["targets"] = TARGETS
    figures["met"] = {
        "collector_events_per_second": figures["collector_events_per_second"]
        >= TARGETS["collector_events_per_second"],
        "processor_events_per_second": figures["processor_events_per_second"]
        >= TARGETS["processor_events_per_second"],
        "collector_durable_events_per_second": figures["collector_durable_events_per_second"]
        >= TARGETS["collector_durable_events_per_second"],
        "freshness_p99_seconds": figures["freshness_p99_seconds"]
        < TARGETS["freshness_p99_seconds"]}
    path = write_result("streaming", figures)
    return {"path": str(path), **figures}


def _throughput_and_freshness(events: int) -> dict:
    from recsys.feature_repo.store import open_store

    with tempfile.TemporaryDirectory(prefix="recsys-bench-streaming-") as tmp, \
            temporary_postgres_database("feast_stream_bench") as registry_url:
        tmp = Path(tmp)
        end = pd.Timestamp.now(tz="UTC").floor("s")
        config = ShopConfig(events=events, seed=11, days=3, end=end.to_pydatetime())
        source = tmp / "events.jsonl"
        write_shop(generate_shop(config), "jsonl", source, config)
        settings = Settings(state_dir=tmp / "state", feast_profile="production",
                            feast_registry_url=registry_url, redis_url="redis://127.0.0.1:6379/9",
                            event_stream=f"bench:{uuid.uuid4().hex[:6]}")
        bus = build_bus(settings)
        bus.client.flushdb()
        port = 18_090
        collector = _start_collector(settings, port)
        url = f"http://127.0.0.1:{port}/events"
        try:
            bodies = [b"\n".join(batch) for batch in batches(source, BATCH)]
            collector_seconds = _post_all(url, bodies)
            accepted = bus.client.xlen(bus.stream)
            processor = build_processor(settings, ProcessorConfig(block_ms=200))
            sink = build_sink(settings, SinkConfig(block_ms=200, max_events=50_000))
            with worker_heap():  # as `recsys stream processor` / `sink` run
                started = time.perf_counter()
                processor.run(idle_exit_polls=1)
                processor_seconds = time.perf_counter() - started
                started = time.perf_counter()
                sink.run(idle_exit_polls=1)
                sink_seconds = time.perf_counter() - started
            ndjson_bytes = source.stat().st_size
            # freshness: a fresh stream, the processor live in its own thread
            bus.reset()
            stop = threading.Event()
            live = build_processor(settings, ProcessorConfig(block_ms=20, batch_size=2000))
            thread = threading.Thread(target=live.run, kwargs={"stop": stop.is_set})
            thread.start()
            store, _ = open_store(settings)
            fresh_source = tmp / "fresh.jsonl"
            fresh_config = ShopConfig(events=FRESHNESS_RATE * (FRESHNESS_SECONDS + 5), seed=12,
                                      days=1, end=end.to_pydatetime())
            write_shop(generate_shop(fresh_config), "jsonl", fresh_source, fresh_config)
            latencies, timed_out, skipped = _freshness(settings, url, fresh_source, store)
            stop.set()
            thread.join()
        finally:
            collector.kill()
            bus.client.flushdb()
    figures = {
        "events": events, "accepted": int(accepted), "batch_size": BATCH, "clients": CLIENTS,
        "collector_events_per_second": round(events / collector_seconds),
        "processor_events_per_second": round(processor.stats.messages / processor_seconds),
        "processor_users_pushed": processor.stats.users_pushed,
        "sink_events_per_second": round(sink.stats.messages / sink_seconds),
        "sink_parquet_bytes": sink.stats.bytes, "ndjson_bytes": ndjson_bytes,
        "parquet_to_ndjson_size_ratio": round(sink.stats.bytes / ndjson_bytes, 4),
        "freshness_rate_events_per_second": FRESHNESS_RATE,
        "freshness_probes": len(latencies), "freshness_probes_timed_out": timed_out,
        "freshness_probes_skipped": skipped,
        "freshness_p50_seconds": round(float(np.percentile(latencies, 50)), 4),
        "freshness_p99_seconds": round(float(np.percentile(latencies, 99)), 4),
        "setup": "collector: uvicorn process, 4 client threads posting NDJSON batches of 100; "
                 "processor: batches of 10000 with read-ahead (freshness: 2000, live thread), "
                 "Feast production profile (Redis online store, PostgreSQL registry); sink: zstd "
                 "Parquet, local lake; all on the local Redis. Scale parts: a redis-server of "
                 "their own each (durable: infra/redis/bus.conf), processes as deployed "
                 "(collector, `recsys stream processor --member K/N`, sink), events of a "
                 "generated shop resent with fresh ids and send-time timestamps",
    }
    return figures
