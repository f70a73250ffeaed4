"""The scale figures of `recsys bench streaming`: the collector on the durable bus Redis
(appendfsync always) against a volatile one (the fsync cost), the session processor as 1
and as 2 processes on the same machine, and a sustained run of millions of events with the
bus Redis's peak memory. Each part runs on a redis-server of its own. On Kafka
(`--bus kafka`): the processors 1 and 2 and a sustained run, each on a topic of its own."""
from __future__ import annotations

import logging
import subprocess
import time
import uuid
from pathlib import Path

import orjson
import redis

from recsys.benchmarks.stream_load import (
    LoadResult,
    post_load,
    run_load,
    start_collector,
    start_worker,
)
from recsys.core.data.synthetic.config import ShopConfig
from recsys.core.data.synthetic.generate import generate_shop, write_shop
from recsys.core.settings import Settings
from recsys.streaming.runtime import build_bus
from recsys.tools.local_services import free_port, redis_server

log = logging.getLogger(__name__)


def shop_templates(folder: Path, events: int = 20_000) -> list[dict]:
    """Events of a generated shop, sent again and again with fresh ids and times."""
    config = ShopConfig(events=events, seed=5, days=1)
    source = folder / "templates.jsonl"
    write_shop(generate_shop(config), "jsonl", source, config)
    return [orjson.loads(line) for line in source.read_bytes().splitlines() if line.strip()]


def _settings(folder: Path, bus_url: str, base: Settings, **changes) -> Settings:
    return base.model_copy(update={"state_dir": folder / "state", "bus_redis_url": bus_url,
                                   "event_stream": f"bench:{uuid.uuid4().hex[:6]}",
                                   **changes})


def collector_rates(folder: Path, base: Settings, templates: list[dict], events: int,
                    batch: int = 100, clients: int = 4) -> dict:
    """Events/s the collector accepts (batches of `batch`, `clients` posting threads) on a
    durable and on a volatile bus Redis; the difference is what fsync on every write costs."""
    figures = {}
    for durable in (True, False):
        name = "durable" if durable else "volatile"
        with redis_server(folder / f"bus-{name}", durable=durable) as server:
            settings = _settings(folder / name, server.url, base, bus_max_length=10 * events)
            port = free_port()
            collector = start_collector(settings, port, allow_volatile=not durable)
            try:
                result = LoadResult(events=events)
                started = time.perf_counter()
                post_load(f"http://127.0.0.1:{port}/events", templates, events, batch,
                          clients, result)
                seconds = time.perf_counter() - started
            finally:
                collector.kill()
            info = redis.Redis.from_url(server.url).info("persistence")
        figures[f"collector_{name}_events_per_second"] = round(result.accepted / seconds)
        if durable:
            figures["collector_durable_aof_enabled"] = bool(info.get("aof_enabled"))
    per_request = (batch / figures["collector_durable_events_per_second"]
                   - batch / figures["collector_volatile_events_per_second"]) * clients
    figures["fsync_cost_ms_per_request"] = round(per_request * 1000, 3)
    figures["fsync_throughput_loss"] = round(
        1 - figures["collector_durable_events_per_second"]
        / figures["collector_volatile_events_per_second"], 3)
    return figures


def processor_scaling(folder: Path, base: Settings, templates: list[dict], events: int
                      ) -> dict:
    """The same backlog of `events` processed by 1 process, then by 2 (members 0/2 and 1/2
    of a 2-partition bus): events/s of each process and in all, from the first event read
    to the group's lag reaching 0 (process start-up not counted)."""
    figures = {}
    for processors in (1, 2):
        with redis_server(folder / f"bus-p{processors}", durable=False) as server:
            settings = _settings(folder / f"p{processors}", server.url, base,
                                 bus_partitions=2, bus_max_length=10 * events)
            _post_backlog(settings, templates, events)
            bus = build_bus(settings)
            workers = [start_worker(settings, "processor", f"{k}/{processors}", idle_exit=2)
                       for k in range(processors)]
            started = _wait_for_first_read(bus, "session-features", workers)
            while bus.lag("session-features"):
                time.sleep(0.01)
            seconds = time.perf_counter() - started
            stats = [_stats(w) for w in workers]
        rates = [round(s["messages"] / seconds) for s in stats]
        figures[f"processors_{processors}_events_per_second"] = round(events / seconds)
        figures[f"processors_{processors}_each_events_per_second"] = rates
    return figures


def _post_backlog(settings: Settings, templates: list[dict], events: int) -> None:
    """`events` accepted by a collector of its own on `settings`' bus, nobody reading."""
    port = free_port()
    collector = start_collector(settings, port, allow_volatile=True)
    try:
        post_load(f"http://127.0.0.1:{port}/events", templates, events, 100, 4,
                  LoadResult(events=events), session_rounds=2)
    finally:
        collector.kill()


def kafka_processor_scaling(settings: Settings, templates: list[dict], events: int) -> dict:
    """`processor_scaling` on Kafka: the same backlog on a topic of its own per run, read by
    1, then 2 processor processes of one consumer group. The group join takes seconds and
    the first member reads while the second joins, so the rate is the group's lag when the
    group is stable with all its members over the time from then until the lag is 0."""
    from recsys.benchmarks.stream_load import wait_for_kafka_members

    figures = {}
    for processors in (1, 2):
        run = settings.model_copy(update={"event_stream": f"bench.{uuid.uuid4().hex[:6]}"})
        _post_backlog(run, templates, events)
        bus = build_bus(run)
        workers = [start_worker(run, "processor", f"{k}/{processors}", idle_exit=20)
                   for k in range(processors)]
        wait_for_kafka_members(run, "session-features", workers)
        started, backlog = time.perf_counter(), bus.lag("session-features")
        while bus.lag("session-features"):
            time.sleep(0.01)
        seconds = time.perf_counter() - started
        for worker in workers:
            _stats(worker)  # each exits 0 once idle
        bus.close()
        figures[f"processors_{processors}_events_per_second"] = round(backlog / seconds)
        figures[f"processors_{processors}_measured_events"] = backlog
    figures["processors_2_speedup"] = round(figures["processors_2_events_per_second"]
                                            / figures["processors_1_events_per_second"], 2)
    return figures


def kafka_sustained(folder: Path, settings: Settings, templates: list[dict], events: int
                    ) -> dict:
    """`events` through the collector, 2 processors and the sink at once on a topic and a
    lake of their own; every accepted event must be in the lake once."""
    run = settings.model_copy(update={"event_stream": f"bench.{uuid.uuid4().hex[:6]}",
                                      "state_dir": folder / "sustained"})
    result = run_load(run, templates, events, processors=2)
    if result.lake_rows != result.accepted or result.lake_unique_ids != result.accepted:
        raise RuntimeError(f"Kafka sustained run: {result.accepted} accepted but "
                           f"{result.lake_rows} lake rows ({result.lake_unique_ids} distinct)")
    return {"sustained_events": events,
            "sustained_events_per_second": round(result.events_per_second),
            "sustained_503_answers": result.refused_503,
            "sustained_accepted": result.accepted,
            "sustained_lake_rows": result.lake_rows,
            "sustained_lake_distinct_event_ids": result.lake_unique_ids}


def _wait_for_first_read(bus, group: str, workers, timeout: float = 120.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(w.poll() is not None for w in workers):
            raise RuntimeError("a processor exited at start: "
                               + " | ".join(w.stderr.read().decode()[-500:] for w in workers))
        try:
            read = sum(int(g["entries-read"] or 0) for s in bus.streams
                       for g in bus.client.xinfo_groups(s) if g["name"].decode() == group)
        except redis.ResponseError:
            read = 0
        if read:
            return time.perf_counter()
        time.sleep(0.002)
    raise RuntimeError(f"no processor read within {timeout:.0f} s")


def _stats(process: subprocess.Popen) -> dict:
    process.wait(timeout=300)
    lines = process.stdout.read().decode().strip().splitlines()
    if process.returncode or not lines:
        log = process.log_path.read_text() if hasattr(process, "log_path") else \
            process.stderr.read().decode()
        raise RuntimeError(f"processor failed: {log[-1000:]}")
    return orjson.loads(lines[-1])


def sustained(folder: Path, base: Settings, templates: list[dict], events: int,
              bound: int = 200_000) -> dict:
    """`events` through collector, 2 processors and the sink at once with a backlog bound:
    end-to-end events/s, the bus Redis's peak memory and stream length, 503s."""
    with redis_server(folder / "bus-sustained", durable=False) as server:
        settings = _settings(folder / "sustained", server.url, base, bus_partitions=2,
                             bus_max_length=bound, bus_dedup_seconds=600)
        result = run_load(settings, templates, events, processors=2)
    if result.lake_rows != result.accepted or result.lake_unique_ids != result.accepted:
        raise RuntimeError(f"sustained run: {result.accepted} accepted but {result.lake_rows} "
                           f"lake rows ({result.lake_unique_ids} distinct)")
    return {"sustained_events": events, "sustained_bound": bound,
            "sustained_dedup_seconds": 600,
            "sustained_events_per_second": round(result.events_per_second),
            "sustained_redis_peak_mb": round(result.redis_peak_used_bytes / 2**20, 1),
            "sustained_stream_peak_entries": result.stream_peak_entries,
            "sustained_503_answers": result.refused_503,
            "sustained_lake_rows": result.lake_rows}
