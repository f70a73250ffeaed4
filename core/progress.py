"""Logging and progress helpers: one log line per step, bars on long work."""
from __future__ import annotations

import logging
import os
import resource
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")

log = logging.getLogger("recsys")


def configure_logging(level: str | None = None) -> None:
    """Send project logs to stderr in one readable format."""
    from recsys.core.settings import load_settings

    level = level or load_settings().log_level
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s | %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    # chatty dependencies: keep their warnings, drop their per-call info lines
    for noisy in ("feast.infra.registry.registry", "alembic", "mlflow.store.db.utils", "httpx",
                  "feast.infra.registry.caching_registry"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """A progress bar on stderr, silent when stderr is not a terminal or RECSYS_NO_PROGRESS=1."""
    from recsys.core.settings import load_settings

    disable = load_settings().no_progress or not sys.stderr.isatty()
    yield from tqdm(items, desc=desc, total=total, disable=disable, leave=False)


@contextmanager
def step(name: str, **context: object) -> Iterator[dict]:
    """Log the start and end of a step with its duration; the yielded dict adds to the end line."""
    details: dict = {}
    extra = " ".join(f"{k}={v}" for k, v in context.items())
    log.info("step %s: start %s", name, extra)
    started = time.perf_counter()
    yield details
    seconds = time.perf_counter() - started
    done = " ".join(f"{k}={v}" for k, v in details.items())
    log.info("step %s: done in %.2fs %s", name, seconds, done)


def peak_rss_mb() -> float:
    """Peak resident memory of this process (and waited-for children) in MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


def publish_metrics(artifact, values: dict) -> None:
    """Log numbers on a KFP Metrics artifact and also write them to its path as JSON.

    The file matters: kfp.local's cache treats an output whose file is missing as a miss,
    and a Metrics artifact otherwise never gets one.
    """
    import json

    clean = {k: float(v) for k, v in values.items()}
    for name, value in clean.items():
        artifact.log_metric(name, value)
    os.makedirs(os.path.dirname(artifact.path) or ".", exist_ok=True)
    with open(artifact.path, "w") as handle:
        json.dump(clean, handle, indent=2)
