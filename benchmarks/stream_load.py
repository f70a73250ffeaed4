"""A sustained load through the whole real-time path, as separate processes: the collector
(uvicorn), N session processors (`--member K/N` on Redis; one consumer group on Kafka) and a
lake sink, on a bus Redis of its own whose memory is sampled all along, or on a Kafka
broker. Used by `recsys bench streaming` (5M events on Redis, 1M on Kafka) and by the
bounded-memory test (1.2M events).

Events are the templates of a generated shop sent again and again, each with a fresh
`event_id` and the time it is sent as its timestamp, so millions of events need no file of
that size. Posting clients retry a 503 after its Retry-After and count it: "no 503 while
the consumers keep up" is then a figure, not an assumption.
"""
from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import redis

from recsys.core.data.event_store import RAW_ZONE
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from recsys.core.settings import Settings
from recsys.streaming.runtime import build_bus
from recsys.tools.local_services import free_port, wait_for_http

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[1]
LOAD_WRITE_KEY = "load-write-key"
HEADERS = {"Content-Type": "application/x-ndjson", "Authorization": f"Bearer {LOAD_WRITE_KEY}"}


@dataclass
class LoadResult:
    events: int
    accepted: int = 0
    duplicates: int = 0
    refused_503: int = 0
    send_seconds: float = 0.0
    drain_seconds: float = 0.0
    """From the first event sent until every consumer group's lag was 0."""
    redis_peak_used_bytes: int = 0
    stream_peak_entries: int = 0
    processor_messages: list[int] = field(default_factory=list)
    sink_written: int = 0
    lake_rows: int = 0
    lake_unique_ids: int = 0

    @property
    def events_per_second(self) -> float:
        return self.accepted / self.drain_seconds if self.drain_seconds else 0.0


def worker_env(settings: Settings) -> dict:
    """The environment that makes `recsys stream ...` processes use `settings`."""
    env = {**os.environ, "RECSYS_STATE_DIR": str(settings.state_dir),
           "RECSYS_EVENT_STREAM": settings.event_stream, "RECSYS_NO_PROGRESS": "1",
           "RECSYS_FEAST_PROFILE": settings.feast_profile,
           "RECSYS_FEAST_REGISTRY_URL": settings.feast_registry_url,
           "RECSYS_REDIS_URL": settings.redis_url, "RECSYS_LAKE_URI": settings.lake,
           "RECSYS_BUS_PARTITIONS": str(settings.bus_partitions),
           "RECSYS_BUS_MAX_LENGTH": str(settings.bus_max_length),
           "RECSYS_BUS_DEDUP_SECONDS": str(settings.bus_dedup_seconds),
           "RECSYS_COLLECTOR_WRITE_KEYS": LOAD_WRITE_KEY,
           "RECSYS_COLLECTOR_RATE_PER_SECOND": "1000000",
           "RECSYS_COLLECTOR_CLIENT_RATE_PER_SECOND": "1000000", "PYTHONPATH": str(REPO)}
    if settings.bus_redis_url:
        env["RECSYS_BUS_REDIS_URL"] = settings.bus_redis_url
    if settings.event_bus == "kafka":
        env.update({
            "RECSYS_EVENT_BUS": "kafka", "RECSYS_KAFKA_BOOTSTRAP": str(settings.kafka_bootstrap),
            "RECSYS_KAFKA_PARTITIONS": str(settings.kafka_partitions),
            "RECSYS_KAFKA_REPLICATION_FACTOR": str(settings.kafka_replication_factor),
            "RECSYS_KAFKA_SESSION_TIMEOUT_SECONDS": str(settings.kafka_session_timeout_seconds),
            "RECSYS_KAFKA_IDEMPOTENT_PRODUCER": str(settings.kafka_idempotent_producer).lower()})
    return env


def start_collector(settings: Settings, port: int, allow_volatile: bool) -> subprocess.Popen:
    command = [sys.executable, "-m", "recsys.cli.main", "stream", "collector",
               "--port", str(port)] + (["--allow-volatile-bus"] if allow_volatile else [])
    process = subprocess.Popen(command, env=worker_env(settings), cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if not wait_for_http(f"http://127.0.0.1:{port}/health", 90, process):
        process.kill()
        raise RuntimeError(f"collector did not start: {process.stderr.read()[-2000:]!r}")
    return process


def start_worker(settings: Settings, kind: str, member: str, idle_exit: int
                 ) -> subprocess.Popen:
    """A `recsys stream <kind>` process. On Kafka its log goes to a file beside the state
    (`process.log_path`): the consumers log every rebalance, which the benchmark reads to
    know when each member has its partitions, and a long run would fill a pipe."""
    consumer = f"{kind}-{member.split('/')[0]}"
    command = [sys.executable, "-m", "recsys.cli.main", "stream", kind, "--member", member,
               "--consumer", consumer, "--idle-exit", str(idle_exit)]
    if settings.event_bus != "kafka":
        return subprocess.Popen(command, env=worker_env(settings), cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log_path = Path(settings.state_dir) / f"{consumer}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, env=worker_env(settings), cwd=REPO,
                                   stdout=subprocess.PIPE, stderr=log_file)
    process.log_path = log_path  # type: ignore[attr-defined]
    return process


def post_load(url: str, templates: list[dict], total: int, batch: int, clients: int,
              result: LoadResult, rate: float | None = None,
              session_rounds: int | None = None,
              cancel: threading.Event | None = None) -> None:
    """Send `total` events (templates with fresh ids and send-time timestamps) from
    `clients` threads, at most `rate` events/s in all when given; a 503 is retried after
    its Retry-After and counted. Setting `cancel` stops every client before its next
    request (nothing else would end a load whose consumers died: the bus stays full).

    With `session_rounds`, every that many passes over the templates their users come
    back as new visitors (`<user>.<n>`): millions of events then look like a shop's day,
    many short sessions, not a few thousand users each sending hundreds of events."""
    lock = threading.Lock()
    began = time.perf_counter()
    cancel = cancel or threading.Event()

    def client_loop(index: int) -> None:
        with httpx.Client(timeout=60) as client:
            for start in range(index * batch, total, clients * batch):
                if cancel.is_set():
                    return
                if rate:
                    time.sleep(max(0.0, began + start / rate - time.perf_counter()))
                now = int(time.time() * 1000)
                lines = []
                for n in range(start, min(start + batch, total)):
                    template = templates[n % len(templates)]
                    event = {**template, "event_id": f"L{n}", "timestamp": now}
                    if session_rounds:
                        visit = n // (len(templates) * session_rounds)
                        event["user_id"] = f"{template['user_id']}.{visit}"
                    lines.append(orjson.dumps(event))
                body = b"\n".join(lines)
                while True:
                    answer = client.post(url, content=body, headers=HEADERS)
                    if answer.status_code != 503 or cancel.is_set():
                        break
                    with lock:
                        result.refused_503 += 1
                    time.sleep(float(answer.headers.get("Retry-After", "1")))
                if cancel.is_set():
                    return
                if answer.status_code != 202:
                    raise RuntimeError(f"collector answered {answer.status_code}: "
                                       f"{answer.text[:500]}")
                counts = answer.json()
                with lock:
                    result.accepted += counts["accepted"]
                    result.duplicates += counts["duplicates"]

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client_loop, range(clients)))


def sample_bus(bus_url: str, streams: list[str], stop: threading.Event,
               result: LoadResult) -> None:
    client = redis.Redis.from_url(bus_url)
    while not stop.is_set():
        info = client.info("memory")
        result.redis_peak_used_bytes = max(result.redis_peak_used_bytes, info["used_memory"])
        with client.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xlen(stream)
            entries = sum(pipe.execute())
        result.stream_peak_entries = max(result.stream_peak_entries, entries)
        stop.wait(0.25)


def run_load(settings: Settings, templates: list[dict], total: int, processors: int = 1,
             batch: int = 100, clients: int = 2, allow_volatile: bool = True,
             rate: float | None = None, session_rounds: int | None = 2,
             progress_every: float = 10.0) -> LoadResult:
    """Collector + `processors` processors + one sink as processes on `settings` (whose
    bus Redis should be a server of its own: its memory is sampled); returns the figures
    once every group has drained and the workers have exited."""
    result = LoadResult(events=total)
    bus = build_bus(settings)
    port = free_port()
    collector = start_collector(settings, port, allow_volatile)
    workers = [start_worker(settings, "processor", f"{k}/{processors}", idle_exit=8)
               for k in range(processors)]
    workers.append(start_worker(settings, "sink", "0/1", idle_exit=16))
    stop = threading.Event()
    if settings.event_bus == "redis":  # the bus Redis's memory; a Kafka broker keeps a log
        threading.Thread(target=sample_bus, args=(settings.bus_url, bus.streams, stop, result),
                         daemon=True).start()
    groups = ("session-features", "lake-sink")
    try:
        if settings.event_bus == "kafka":
            wait_for_kafka_members(settings, "session-features", workers[:-1])
            wait_for_kafka_members(settings, "lake-sink", workers[-1:])
        else:
            _wait_for_groups(bus, groups, workers)
        started = time.perf_counter()
        cancel = threading.Event()
        sender = threading.Thread(target=post_load, args=(
            f"http://127.0.0.1:{port}/events", templates, total, batch, clients, result, rate,
            session_rounds, cancel))
        sender.start()
        last = started
        while sender.is_alive():
            sender.join(timeout=1.0)
            if any(w.poll() is not None for w in workers):  # no worker leaves mid-load
                cancel.set()
                sender.join()
                raise RuntimeError("a stream worker exited while the load was sent: "
                                   + _outputs(workers))
            if time.perf_counter() - last >= progress_every:
                last = time.perf_counter()
                log.info("load: %d/%d accepted, lag %s, redis %.0f MB, %d 503s",
                         result.accepted, total, {g: bus.lag(g) for g in groups},
                         result.redis_peak_used_bytes / 2**20, result.refused_503)
        result.send_seconds = time.perf_counter() - started
        while any(bus.lag(g) for g in groups):
            # a worker may leave once its own group is drained (idle exit); not with an error
            if any(w.poll() for w in workers) or all(w.poll() is not None for w in workers):
                raise RuntimeError("a stream worker failed before the bus drained: "
                                   + _outputs(workers))
            time.sleep(0.05)
        result.drain_seconds = time.perf_counter() - started
        for worker in workers:
            worker.wait(timeout=300)
        stats = [_last_json(w) for w in workers]
        if any(w.returncode for w in workers):
            raise RuntimeError("a stream worker failed: " + _outputs(workers))
        result.processor_messages = [s["messages"] for s in stats[:-1]]
        result.sink_written = stats[-1]["written"]
    finally:
        stop.set()
        collector.kill()
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    lake = Lake(settings.lake)
    ids = lake.read_tables(lake.list(RAW_ZONE), columns=["event_id"],
                           schema=RAW_EVENT_SCHEMA).column("event_id")
    result.lake_rows = len(ids)
    result.lake_unique_ids = len(ids.unique())
    return result


def _wait_for_groups(bus, groups, workers, timeout: float = 120.0) -> None:
    """Until every worker has created its consumer group (it has started reading)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(w.poll() is not None for w in workers):
            raise RuntimeError("a stream worker exited at start: " + _outputs(workers))
        try:
            names = {g["name"].decode() for s in bus.streams
                     for g in bus.client.xinfo_groups(s)}
        except redis.ResponseError:  # the stream does not exist yet
            names = set()
        if set(groups) <= names:
            return
        time.sleep(0.2)
    raise RuntimeError("stream workers did not start reading within "
                       f"{timeout:.0f} s: " + _outputs(workers))


def wait_for_kafka_members(settings: Settings, group: str, workers,
                           timeout: float = 120.0) -> None:
    """Until the Kafka workers of `group` share every partition of the topic, each owning
    some (their latest rebalance lines in their logs; Tansu's group description lists no
    members, so the broker cannot be asked)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(w.poll() is not None for w in workers):
            raise RuntimeError("a stream worker exited at start: " + _outputs(workers))
        owned = [_latest_assignment(w.log_path, group) for w in workers]
        if all(owned) and sorted(p for parts in owned for p in parts) == list(
                range(settings.kafka_partitions)):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the {group} workers did not share the partitions within "
                       f"{timeout:.0f} s: " + _outputs(workers))


def _latest_assignment(log_path: Path, group: str) -> list[int]:
    pattern = re.compile(rf"Kafka group {re.escape(group)}: consumer \S+ owns partitions "
                         r"\[([0-9, ]*)\]")
    found = pattern.findall(log_path.read_text(errors="replace"))
    return [int(p) for p in found[-1].split(",") if p.strip()] if found else []


def _last_json(process: subprocess.Popen) -> dict:
    lines = process.stdout.read().decode().strip().splitlines()
    return orjson.loads(lines[-1]) if lines else {}


def _outputs(workers) -> str:
    def tail(worker) -> str:
        if hasattr(worker, "log_path"):
            return worker.log_path.read_text(errors="replace")[-800:]
        return (worker.stderr.read() if worker.poll() is not None else b"").decode()[-800:]

    return " | ".join(tail(w) for w in workers)
