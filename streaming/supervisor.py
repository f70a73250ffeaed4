"""Keeps the stream workers (processor, lake sink) running inside `recsys stream up`.

Each worker runs on its own thread. A worker that raises is logged and started again (the
same object, so a sink's unwritten buffer is kept) after a back-off that doubles from
`first_backoff` up to `max_backoff`; a run that lasted `healthy_after` seconds resets the
count. After `max_failures` failures in a row the supervisor gives up: `failed` is set,
every worker is asked to stop, and the command exits non-zero so that the process
manager (systemd, Kubernetes) sees it. `status()` is what the collector's `/health` shows.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

Run = Callable[[Callable[[], bool]], None]
"""A worker's loop: `run(stop)` returns when `stop()` is true and raises on a failure."""


@dataclass
class WorkerState:
    name: str
    running: bool = False
    restarts: int = 0
    failures_in_a_row: int = 0
    last_error: str | None = None
    started_at: float | None = None


@dataclass
class Supervisor:
    workers: dict[str, Run]
    max_failures: int = 5
    first_backoff: float = 1.0
    max_backoff: float = 30.0
    healthy_after: float = 60.0
    stop_event: threading.Event = field(default_factory=threading.Event)
    failed: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.states = {name: WorkerState(name) for name in self.workers}
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for name, run in self.workers.items():
            thread = threading.Thread(target=self._keep_running, args=(name, run),
                                      name=f"worker-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout=timeout)

    def status(self) -> dict:
        return {name: {"running": s.running, "restarts": s.restarts,
                       "failures_in_a_row": s.failures_in_a_row, "last_error": s.last_error}
                for name, s in self.states.items()}

    def healthy(self) -> bool:
        return not self.failed.is_set() and all(s.running for s in self.states.values())

    def _keep_running(self, name: str, run: Run) -> None:
        state = self.states[name]
        while not self.stop_event.is_set():
            state.running, state.started_at = True, time.monotonic()
            try:
                run(self.stop_event.is_set)
                state.running = False
                return  # asked to stop
            except Exception as exc:  # a worker's failure is the supervisor's business
                state.running = False
                lasted = time.monotonic() - state.started_at
                state.failures_in_a_row = 1 if lasted >= self.healthy_after \
                    else state.failures_in_a_row + 1
                state.last_error = f"{type(exc).__name__}: {exc}"
                log.error("stream worker %s failed (%d in a row): %s", name,
                          state.failures_in_a_row, state.last_error, exc_info=exc)
            if state.failures_in_a_row >= self.max_failures:
                log.critical("stream worker %s failed %d times in a row; giving up", name,
                             state.failures_in_a_row)
                self.failed.set()
                self.stop_event.set()
                return
            backoff = min(self.max_backoff,
                          self.first_backoff * 2 ** (state.failures_in_a_row - 1))
            if self.stop_event.wait(backoff):
                return
            state.restarts += 1
            log.info("stream worker %s: restart %d", name, state.restarts)
