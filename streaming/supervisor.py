"""Keeps the stream workers (processor, lake sink, quarantine sink) running inside
`recsys stream up`.

Each worker runs on its own thread. A worker that raises is logged and started again (the
same object, so a sink's unwritten buffer is kept) after a back-off that doubles from
`first_backoff` up to `max_backoff`:

- a passing failure (`is_transient`: the bus or the lake unreachable, a full or read-only
  disk, a socket timeout) is retried for as long as it lasts; the worker is `retrying`
  meanwhile, and `/health` says so with the last error;
- a failure no retry mends (a bug: TypeError, KeyError ...) is retried too, but after
  `max_failures` of them in a row the worker is stopped: `failed` is set, the failure is
  logged at CRITICAL, `/health` answers 503 naming the worker and its error, the metric
  `recsys_stream_worker_up` is 0, and `recsys stream up` exits 1 when it is stopped. The
  collector and the other workers keep running: events wait in the bus (bounded by its
  back-pressure) until the worker is fixed and started again.

A worker is `running` again (and its counts start over) once a poll went through after the
restart; until then it is `retrying`. `status()` is what the
collector's `/health` shows.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from recsys.core.errors import RecsysError

log = logging.getLogger(__name__)

Run = Callable[[Callable[[], bool]], None]
"""A worker's loop: `run(stop)` calls `stop()` before each poll, returns when it is true and
raises on a failure (a second call in one run tells the supervisor a poll went through)."""


def is_transient(exc: BaseException) -> bool:
    """Whether a retry can mend it: a service unreachable or refusing for now (the
    project's 503 errors: bus, lake), an OS-level failure (connection, timeout, disk full,
    read-only file system, permissions), a Redis or SQLite (Feast's local store) error."""
    if isinstance(exc, RecsysError):
        return exc.status_code == 503
    return isinstance(exc, (OSError, redis.RedisError, sqlite3.OperationalError))


@dataclass
class WorkerState:
    name: str
    running: bool = False
    stopped: bool = False
    """Stopped for good after `max_failures` failures in a row no retry mends."""
    restarts: int = 0
    failures_in_a_row: int = 0
    permanent_in_a_row: int = 0
    last_error: str | None = None
    last_error_transient: bool | None = None
    started_at: float | None = None
    polls: int = 0
    """Calls of `stop()` in the current run: from 2 on, a poll went through."""
    failing_since: float | None = None
    """Wall-clock time of the first failure of the current series (None while healthy)."""

    @property
    def state(self) -> str:
        if self.stopped:
            return "stopped"
        if self.running and (self.polls >= 2 or self.failures_in_a_row == 0):
            return "running"
        return "retrying" if self.failures_in_a_row else "not running"


@dataclass
class Supervisor:
    workers: dict[str, Run]
    max_failures: int = 5
    first_backoff: float = 1.0
    max_backoff: float = 30.0
    healthy_after: float = 60.0
    transient: Callable[[BaseException], bool] = is_transient
    stop_event: threading.Event = field(default_factory=threading.Event)
    failed: threading.Event = field(default_factory=threading.Event)
    """Set when a worker was stopped for good (see the module's docstring)."""

    def __post_init__(self) -> None:
        self.states = {name: WorkerState(name) for name in self.workers}
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for name, run in self.workers.items():
            thread = threading.Thread(target=self._keep_running, args=(name, run),
                                      name=f"worker-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wait(self) -> None:
        """Until every worker has returned (asked to stop, done, or stopped for good)."""
        while any(thread.is_alive() for thread in self._threads):
            for thread in self._threads:
                thread.join(timeout=0.5)  # short joins: signal handlers run in between

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout=timeout)

    def status(self) -> dict:
        return {name: {"state": s.state, "running": s.state == "running",
                       "restarts": s.restarts,
                       "failures_in_a_row": s.failures_in_a_row, "last_error": s.last_error,
                       "last_error_transient": s.last_error_transient,
                       "failing_since": s.failing_since}
                for name, s in self.states.items()}

    def healthy(self) -> bool:
        return not self.failed.is_set() and \
            all(s.state == "running" for s in self.states.values())

    def problems(self) -> list[str]:
        """One line per worker that is not running: what it is doing and its last error."""
        lines = []
        for name, s in self.states.items():
            if s.stopped:
                lines.append(f"worker {name} stopped after {s.permanent_in_a_row} failures in "
                             f"a row that retries do not mend: {s.last_error}")
            elif s.state == "retrying" and s.last_error is not None:
                lines.append(f"worker {name} retrying ({s.failures_in_a_row} failures in a "
                             f"row): {s.last_error}")
            elif s.state != "running":
                lines.append(f"worker {name} not running")
        return lines

    def backoff(self, failures: int) -> float:
        return min(self.max_backoff, self.first_backoff * 2 ** min(failures - 1, 32))

    def _keep_running(self, name: str, run: Run) -> None:
        state = self.states[name]

        def stop() -> bool:
            state.polls += 1
            if state.polls == 2 and state.failures_in_a_row:
                log.warning("stream worker %s: running again after %d failures in a row",
                            name, state.failures_in_a_row)
                state.failures_in_a_row = state.permanent_in_a_row = 0
                state.failing_since = None
            return self.stop_event.is_set()

        while not self.stop_event.is_set():
            started = time.monotonic()
            state.running, state.started_at, state.polls = True, started, 0
            try:
                run(stop)
                state.running = False
                return  # asked to stop
            except Exception as exc:  # a worker's failure is the supervisor's business
                state.running = False
                self._count(state, exc, started)
            if state.permanent_in_a_row >= self.max_failures:
                state.stopped = True
                log.critical("stream worker %s stopped: %d failures in a row that retries do "
                             "not mend (last: %s); the collector keeps accepting events, which "
                             "wait in the bus until the worker runs again", name,
                             state.permanent_in_a_row, state.last_error)
                self.failed.set()
                return
            if self.stop_event.wait(self.backoff(state.failures_in_a_row)):
                return
            state.restarts += 1
            log.info("stream worker %s: restart %d", name, state.restarts)

    def _count(self, state: WorkerState, exc: Exception, started: float) -> None:
        """Count a failure of the run that started at `started` (monotonic)."""
        if time.monotonic() - started >= self.healthy_after:
            state.failures_in_a_row = state.permanent_in_a_row = 0
            state.failing_since = None
        transient = self.transient(exc)
        state.failures_in_a_row += 1
        state.permanent_in_a_row += 0 if transient else 1
        state.failing_since = state.failing_since or time.time()
        state.last_error = f"{type(exc).__name__}: {exc}"
        state.last_error_transient = transient
        if transient:
            log.warning("stream worker %s: %s (%d in a row; retrying in %.1f s)", state.name,
                        state.last_error, state.failures_in_a_row,
                        self.backoff(state.failures_in_a_row))
        else:
            log.error("stream worker %s failed (%d in a row): %s", state.name,
                      state.failures_in_a_row, state.last_error, exc_info=exc)
