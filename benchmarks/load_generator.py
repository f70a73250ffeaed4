"""The load generator of `recsys bench serving`, run as its own small process.

`python -m recsys.benchmarks.load_generator --url URL --users FILE --mode paced|saturation
--duration S [--rate R] [--concurrency C] [--switch-window S]` prints one JSON line:
requests, requests/s, status counts, p50/p95/p99 in ms; with `--switch-window`, also
`after_switch`: the percentiles of the requests due in the S seconds from the first
answered by the newest model version (the answers' `model_version`), and `before_switch`.

- paced: requests due at a fixed rate, at most C in flight; a request's latency counts from
  when it was due, so waiting for a free slot is included (no coordinated omission);
- saturation: C clients in a closed loop.
Only aiohttp and NumPy are imported, and the cyclic GC is off while measuring: a process
holding MLflow and a model showed 50-170 ms pauses of its own (collections, background
threads) that were measured as server latency.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import time
from pathlib import Path

import aiohttp
import numpy as np


class _Recorder:
    def __init__(self, url: str, users: list[str], versions: bool = False):
        self.url, self.users = url, users
        self.latencies: list[float] = []
        self.dues: list[float] = []
        self.versions: list[str] | None = [] if versions else None
        self.statuses: dict[int, int] = {}
        self.rng = random.Random(0)

    async def get(self, session, due: float) -> None:
        user = self.rng.choice(self.users)
        async with session.get(f"{self.url}/recommend/{user}", params={"top_k": "10"}) as resp:
            body = await resp.read()
            self.statuses[resp.status] = self.statuses.get(resp.status, 0) + 1
        self.latencies.append((time.perf_counter() - due) * 1000)
        self.dues.append(due)
        if self.versions is not None:
            self.versions.append(json.loads(body).get("model_version", "") if resp.status == 200
                                 else "")


async def _saturation(url: str, users: list[str], duration: float,
                      concurrency: int) -> tuple[_Recorder, float]:
    """`concurrency` clients in a closed loop."""
    recorder = _Recorder(url, users)
    started = time.perf_counter()
    deadline = started + duration

    async def client(session):
        while time.perf_counter() < deadline:
            await recorder.get(session, time.perf_counter())

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                     headers=_auth()) as s:
        await asyncio.gather(*(client(s) for _ in range(concurrency)))
    return recorder, time.perf_counter() - started


async def _paced(url: str, users: list[str], duration: float, rate: float,
                 concurrency: int, versions: bool = False) -> tuple[_Recorder, float]:
    """Requests due at a fixed rate, at most `concurrency` in flight; latency from due time."""
    recorder = _Recorder(url, users, versions)
    slots = asyncio.Semaphore(concurrency)

    async def one(session, due):
        async with slots:
            await recorder.get(session, due)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                     headers=_auth()) as s:
        started = time.perf_counter()
        running: set[asyncio.Task] = set()  # finished tasks are dropped, not kept to the end
        for n in range(int(duration * rate)):
            due = started + n / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            task = asyncio.create_task(one(s, due))
            running.add(task)
            task.add_done_callback(running.discard)
        await asyncio.gather(*running)
    return recorder, time.perf_counter() - started


def _auth() -> dict[str, str]:
    """The service token serving requires (RECSYS_SERVING_TOKEN, set by the benchmark)."""
    return {"Authorization": f"Bearer {os.environ['RECSYS_SERVING_TOKEN']}"}


def _summary(recorder: _Recorder, seconds: float) -> dict:
    latencies = np.array(recorder.latencies)
    dues = np.array(recorder.dues)
    second = (dues - dues.min()).astype(int)
    worst = sorted(((float(latencies[second == s].max()), int(s)) for s in np.unique(second)),
                   reverse=True)[:5]
    return {"requests": len(latencies), "seconds": round(seconds, 1),
            "requests_per_second": round(len(latencies) / seconds, 1),
            "status_counts": {str(k): v for k, v in recorder.statuses.items()},
            **{f"p{q}_ms": round(float(np.percentile(latencies, q)), 2) for q in (50, 95, 99)},
            "slowest_seconds": [{"second": s, "max_ms": round(ms, 1)} for ms, s in worst],
            "started_at": round(time.time() - (time.perf_counter() - float(dues.min())), 2)}


def switch_summary(recorder: _Recorder, window: float) -> dict:
    """Latency of the requests due in the `window` seconds from the first one the newest
    version answered (`after_switch`), and of those due before it (`before_switch`)."""
    versions = np.array(recorder.versions or [])
    latencies, dues = np.array(recorder.latencies), np.array(recorder.dues)
    answered = [v for v in dict.fromkeys(versions.tolist()) if v]
    if len(answered) < 2:
        return {"versions": answered, "switched": False}
    newest = answered[-1]
    switch = float(dues[versions == newest].min())
    after = (dues >= switch) & (dues < switch + window)
    before = dues < switch

    def figures(mask: np.ndarray) -> dict:
        chosen = latencies[mask]
        return {"requests": int(mask.sum()), **{
            f"p{q}_ms": round(float(np.percentile(chosen, q)), 2) if chosen.size else None
            for q in (50, 95, 99)}}

    return {"versions": answered, "switched": True,
            "switch_second": round(switch - float(dues.min()), 1),
            "window_seconds": round(min(window, float(dues.max()) - switch), 1),
            "after_switch": figures(after),
            "old_version_after_switch": int(((versions != newest) & (dues >= switch)).sum()),
            "before_switch": figures(before)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--users", required=True, help="file with one user id per line")
    parser.add_argument("--mode", choices=("paced", "saturation"), required=True)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=550.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--switch-window", type=float, default=0.0,
                        help="paced: also report the SECONDS after the newest model version "
                        "first answered")
    args = parser.parse_args(argv)
    users = Path(args.users).read_text().split()
    run = _paced(args.url, users, args.duration, args.rate, args.concurrency,
                 versions=args.switch_window > 0) \
        if args.mode == "paced" else _saturation(args.url, users, args.duration,
                                                  args.concurrency)
    gc.collect()
    gc.disable()
    recorder, seconds = asyncio.run(run)
    summary = _summary(recorder, seconds)
    if args.switch_window > 0:
        summary["switch"] = switch_summary(recorder, args.switch_window)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
