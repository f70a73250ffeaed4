"""The whole event path of `recsys stream up` in one test process, for the chaos tests: the
collector (a TestClient of its app, on the guarded collector bus) and the supervised
processor, lake sink and quarantine sink, on a redis-server of the test's own and a lake in
a folder, with timeouts and back-offs small enough that an outage of a few seconds is
dozens of retries. It keeps the ledger the assertions need: which event ids the collector
acknowledged (202, or 422 for the refused ones of a request)."""
from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

from fastapi.testclient import TestClient

from recsys.core.data.event_store import QUARANTINE_SCHEMA, QUARANTINE_ZONE, RAW_ZONE
from recsys.core.data.lake import Lake
from recsys.core.data.schema import RAW_EVENT_SCHEMA
from recsys.core.settings import Settings
from recsys.streaming.collector import create_app
from recsys.streaming.lake_sink import SinkConfig
from recsys.streaming.processor import ProcessorConfig
from recsys.streaming.quarantine_sink import QuarantineSinkConfig
from recsys.streaming.runtime import build_collector_bus, build_stream_workers
from recsys.tools.local_services import RedisServer
from tests.streaming.conftest import AUTH, keyed_access

FAST = {"stream_retry_first_seconds": 0.05, "stream_retry_max_seconds": 0.2,
        "bus_socket_timeout_seconds": 0.5, "bus_durability_check_seconds": 0.2}
"""Back-offs, timeouts and check period of the chaos tests (settings; defaults 1-30 s,
5 s, 5 s)."""


def wait_until(condition, seconds: float = 20.0, every: float = 0.05) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return bool(condition())


def events(prefix: str, count: int, start: int = 0) -> list[dict]:
    now = int(time.time() * 1000)
    return [{"event_id": f"{prefix}{n}", "user_id": f"u{n % 7}", "event_type": "view",
             "timestamp": now - 1000, "properties": {"product_id": f"p{n % 11}"}}
            for n in range(start, start + count)]


class EventPath:
    def __init__(self, server: RedisServer, state_dir: Path, lake_uri: str | None = None,
                 with_workers: bool = True, **settings):
        self.server = server
        self.settings = Settings(state_dir=state_dir, bus_redis_url=server.url,
                                 lake_uri=lake_uri, event_stream=f"chaos:{uuid.uuid4().hex[:6]}",
                                 **(FAST | settings))
        self.bus = build_collector_bus(self.settings)
        self.workers = build_stream_workers(
            self.settings, push=len,
            processor_config=ProcessorConfig(block_ms=50, reclaim_idle_ms=1000),
            sink_config=SinkConfig(max_seconds=0.2, block_ms=50, reclaim_idle_ms=1000),
            quarantine_config=QuarantineSinkConfig(max_seconds=0.2, block_ms=50,
                                                   reclaim_idle_ms=1000)) \
            if with_workers else None
        health = self.workers.health if self.workers else None
        self.client = TestClient(create_app(self.bus, keyed_access(), workers=health),
                                 headers=AUTH)
        self.lake = Lake(self.settings.lake)
        self.acknowledged: set[str] = set()
        self.refused: set[str] = set()
        self.answers: list[int] = []
        self._ledger = threading.Lock()

    def start(self) -> "EventPath":
        if self.workers:
            self.workers.supervisor.start()
        return self

    def close(self) -> None:
        if self.workers:
            self.workers.supervisor.stop(timeout=10)

    def post(self, batch: list[dict]):
        """One request; the ledger records what a 202 or a 422 acknowledged."""
        answer = self.client.post("/events", json=batch)
        with self._ledger:
            self.answers.append(answer.status_code)
            if answer.status_code in (202, 422):
                failed = {e["event_id"] for e in answer.json().get("errors", [])}
                self.acknowledged |= {e["event_id"] for e in batch} - failed
                self.refused |= failed
        return answer

    def post_until_acknowledged(self, batch: list[dict], seconds: float = 20.0):
        """Retry a batch with the same event ids (what a client does on 503) until it is
        acknowledged."""
        answers = []
        assert wait_until(lambda: answers.append(self.post(batch)) or
                          answers[-1].status_code in (202, 422), seconds), answers[-1].json()
        return answers

    def lake_ids(self) -> list[str]:
        keys = self.lake.list(RAW_ZONE)
        return self.lake.read_tables(keys, columns=["event_id"], schema=RAW_EVENT_SCHEMA) \
            .column("event_id").to_pylist() if keys else []

    def quarantined_ids(self) -> list[str]:
        keys = self.lake.list(QUARANTINE_ZONE + "/")
        return self.lake.read_tables(keys, columns=["event_id"], schema=QUARANTINE_SCHEMA) \
            .column("event_id").to_pylist() if keys else []

    def all_landed(self) -> bool:
        return set(self.lake_ids()) >= self.acknowledged and \
            set(self.quarantined_ids()) >= self.refused

    def assert_nothing_lost_or_doubled(self) -> None:
        assert wait_until(self.all_landed, 30), (
            f"not in the lake: {sorted(self.acknowledged - set(self.lake_ids()))[:10]}; "
            f"not quarantined: {sorted(self.refused - set(self.quarantined_ids()))}")
        lake, quarantine = self.lake_ids(), self.quarantined_ids()
        assert len(lake) == len(set(lake)), "an event is in the lake twice"
        assert set(lake) == self.acknowledged
        assert len(quarantine) == len(set(quarantine)) and set(quarantine) == self.refused

    def worker_failures(self) -> dict[str, int]:
        return {n: w["failures_in_a_row"] for n, w in self.workers.supervisor.status().items()}
