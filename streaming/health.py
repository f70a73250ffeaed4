"""What the collector's `GET /health` reports: `status` ok or degraded, and why.

Degraded (503) while the collector cannot take events or a worker of `recsys stream up` is
not running: the bus down or not durable (events are answered 503 meanwhile, and 202 again
as soon as it is back), a worker retrying a passing failure (its last error), or a worker
stopped by a failure no retry mends (see streaming/supervisor.py).
"""
from __future__ import annotations

from collections.abc import Callable

from recsys.streaming.bus import EventBus


def health_report(bus: EventBus,
                  workers: Callable[[], tuple[bool, dict]] | None = None) -> dict:
    """`/health`'s body: `status`, `reasons` (one line each), the bus (`up`/`down`), whether
    it is durable (`not checked` with an allowed volatile bus, or a bus that cannot tell),
    and each worker's status."""
    reasons = []
    up = bus.ping()
    if not up:
        reasons.append("bus down: events are refused with 503 until it is back")
    checked = getattr(bus, "durability", None) is not None  # Redis, unless allowed volatile
    problems = bus.durability_problems() \
        if checked and hasattr(bus, "durability_problems") else []
    if problems:
        reasons.append("bus not durable, events refused with 503: " + "; ".join(problems))
    body: dict = {"bus": "up" if up else "down",
                  "durable": (not problems) if checked else "not checked"}
    if workers is not None:
        alive, body["workers"] = workers()
        for name, worker in body["workers"].items():
            if not worker.get("running"):
                reasons.append(f"worker {name} {worker.get('state', 'not running')}: "
                               f"{worker.get('last_error')}")
        if not alive and not any(r.startswith("worker") for r in reasons):
            reasons.append("a worker is not running")
    body["status"] = "degraded" if reasons else "ok"
    body["reasons"] = reasons
    return body
