"""How the serving process's pollers wait between checks.

Three pollers read shared state on a period: the champion alias (`model_source.py`), the
business rules (`live_rules.py`) and the running experiment (`experiment_router.py`), 30 s
each by default. Started together with fixed periods, they would fire together for good:
~50 ms of CPU in one burst (the MLflow reads are most of it), every request in flight
waiting behind it for the GIL. Each wait is drawn between
(1 - `JITTER`) and 1 times its period, so the pollers drift apart and each burst is small
(across replicas it also spreads their reads of the registry and the lake), while the
period stays what it promises: a change applies within it.
"""
from __future__ import annotations

import random
import threading
from collections.abc import Callable

JITTER = 0.2


def jittered(seconds: float, jitter: float = JITTER,
             draw: Callable[[], float] = random.random) -> float:
    """`seconds` times a uniform factor in [1 - jitter, 1]: never longer than `seconds`."""
    return seconds * (1 - jitter * draw())


def wait_next(stop: threading.Event, seconds: float) -> bool:
    """Wait one jittered period; True when `stop` was set (the poller ends)."""
    return stop.wait(jittered(seconds))
