"""`recsys stream replay`: send a file's events to the collector at a steady rate.

The file is rich-format NDJSON (what `recsys generate --format jsonl` writes and what shops
send); lines go out unchanged in NDJSON batches of `batch_size`, paced to `rate` events/s.
A 503 or a 429 (the collector's rate limits) is retried after its Retry-After (nothing of
that batch was stored); 413/422/400 are counted and not retried. A progress line every few
seconds, a summary at the end.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from recsys.core.data.readers.base import open_text
from recsys.core.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class ReplaySummary:
    lines: int = 0
    batches: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    refused_batches: int = 0
    retries: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.lines / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "events_per_second": round(self.rate, 1)}


def batches(path: Path, batch_size: int):
    batch: list[bytes] = []
    with open_text(path) as handle:
        for line in handle:
            if line.strip():
                batch.append(line.rstrip(b"\r\n"))
                if len(batch) == batch_size:
                    yield batch
                    batch = []
    if batch:
        yield batch


def replay(source: str | Path, url: str = "http://127.0.0.1:8090/events",
           rate: float = 1000.0, batch_size: int = 100, max_retries: int = 20,
           limit: int | None = None, report_every: float = 5.0, *,
           write_key: str) -> ReplaySummary:
    path = Path(source)
    if not path.exists():
        raise ConfigError(f"replay source {path} does not exist")
    if rate <= 0 or batch_size <= 0:
        raise ConfigError(f"rate and batch size must be positive (got {rate}, {batch_size})")
    summary = ReplaySummary()
    started = last_report = time.perf_counter()
    headers = {"Content-Type": "application/x-ndjson", "Authorization": f"Bearer {write_key}"}
    with httpx.Client(timeout=30.0) as client:
        for batch in batches(path, batch_size):
            if limit is not None and summary.lines >= limit:
                break
            due = started + summary.lines / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            _send(client, url, b"\n".join(batch), headers, summary, max_retries)
            summary.lines += len(batch)
            summary.batches += 1
            now = time.perf_counter()
            if now - last_report >= report_every:
                last_report = now
                log.info("replay: %d events sent (%.0f/s), %d accepted, %d duplicates, "
                         "%d rejected", summary.lines, summary.lines / (now - started),
                         summary.accepted, summary.duplicates, summary.rejected)
    summary.seconds = time.perf_counter() - started
    log.info("replay done: %s", summary.as_dict())
    return summary


def _send(client: httpx.Client, url: str, body: bytes, headers: dict,
          summary: ReplaySummary, max_retries: int) -> None:
    for _attempt in range(max_retries + 1):
        response = client.post(url, content=body, headers=headers)
        if response.status_code in (429, 503):
            summary.retries += 1
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        if response.status_code in (202, 422):
            payload = response.json()
            summary.accepted += payload["accepted"]
            summary.duplicates += payload["duplicates"]
            summary.rejected += payload["rejected"]
        else:
            summary.refused_batches += 1
            log.warning("replay: batch refused with %d: %s", response.status_code,
                        response.text[:200])
        return
    raise ConfigError(f"collector at {url} kept answering 503 or 429 after {max_retries} "
                      f"retries")
