"""`recsys bench serving`: load test of the MLServer REST API on loopback.

A generated shop (200k events) goes through the training pipeline with the production
feature profile (Redis online store, PostgreSQL registry); MLServer then serves the champion
with the Redis cache. 32 concurrent clients send GET /recommend for 60 s (bounded), 80% known
users and 20% unknown. The naive baseline scores every catalogue item with one model call
each, as the original design did, measured in-process on a few requests.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.local_services import temporary_postgres_database, wait_for_http
from benchmarks.machine import write_result

CONCURRENCY, DURATION_SECONDS, EVENTS = 32, 60.0, 200_000
TARGETS = {"p99_ms": 25.0, "requests_per_second": 500.0}
REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _load(url: str, users: list[str], duration: float) -> tuple[list[float], dict]:
    import aiohttp

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + duration
    rng = random.Random(0)

    async def worker(session):
        while time.perf_counter() < deadline:
            user = rng.choice(users)
            started = time.perf_counter()
            async with session.get(f"{url}/recommend/{user}", params={"top_k": "10"}) as resp:
                await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
            latencies.append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
    return latencies, statuses


def naive_request_ms(model, user_id: str) -> float:
    """Score every catalogue item with its own call (x_u . sim[:, i]), then sort."""
    started = time.perf_counter()
    seen = [str(i) for i in model.items[model.seen[model.user_index[user_id]].indices]]
    scores = [float(model.item_similarity(seen, [item]).sum()) for item in model.items]
    np.argsort(scores)[-10:]
    return (time.perf_counter() - started) * 1000


def _champion(env: dict):
    """The champion the server loaded, read in this process from the same state."""
    from components.common.settings import Settings
    from components.common.tracking import client_for
    from components.train.pyfunc import load_recommender

    settings = Settings(state_dir=env["RECSYS_STATE_DIR"])
    client_for(settings.tracking_uri)
    return load_recommender(f"models:/{settings.registered_model_name}@champion")


def bench_serving(duration: float = DURATION_SECONDS, events: int = EVENTS,
                  workers: int = 0) -> dict:
    with temporary_postgres_database("feast_serving") as registry_url, \
            tempfile.TemporaryDirectory(prefix="recsys-bench-serving-") as folder:
        tmp = Path(folder)
        env = {**os.environ, "RECSYS_STATE_DIR": str(tmp / "state"),
               "RECSYS_FEAST_PROFILE": "production",
               "RECSYS_REDIS_URL": "redis://127.0.0.1:6379/11",
               "RECSYS_FEAST_REGISTRY_URL": registry_url, "RECSYS_NO_PROGRESS": "1"}
        for name in ("RECSYS_LAKE_URI", "RECSYS_MLFLOW_TRACKING_URI"):
            env.pop(name, None)
        subprocess.run([sys.executable, "-m", "recsys_cli.main", "run", "--events", str(events)],
                       env=env, check=True, capture_output=True)
        repo = tmp / "models"
        shutil.copytree(REPO / "serving" / "model_repository", repo)
        port = _free_port()
        base = json.loads((repo / "settings.json").read_text())
        (repo / "settings.json").write_text(json.dumps({
            **base, "http_port": port, "grpc_port": _free_port(), "metrics_port": _free_port(),
            "parallel_workers": workers}))
        server = subprocess.Popen([sys.executable, "-m", "serving.server", "start", str(repo)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            if not wait_for_http(f"{url}/v2/models/recsys/ready", 120, server):
                raise RuntimeError("mlserver did not become ready")
            model = _champion(env)
            known = [str(u) for u in model.users[:5000]]
            users = known * 4 + [f"anon-{i}" for i in range(len(known))]
            latencies, statuses = asyncio.run(_load(url, users, duration))
            naive = [naive_request_ms(model, u) for u in known[:3]]
        finally:
            server.terminate()
            server.wait(timeout=30)
    rps = len(latencies) / duration
    figures = {
        "concurrency": CONCURRENCY, "duration_seconds": duration, "events": events,
        "catalogue_items": int(model.items.size), "requests": len(latencies),
        "status_counts": {str(k): v for k, v in statuses.items()},
        "requests_per_second": round(rps, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p95_ms": round(float(np.percentile(latencies, 95)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "naive_baseline_ms_per_request": round(float(np.mean(naive)), 1),
        "naive_to_service_p50_ratio": round(float(np.mean(naive))
                                            / float(np.percentile(latencies, 50)), 1),
        "setup": f"MLServer 1.7.1, parallel_workers={workers}, Redis online store and cache, "
                 "80% known / 20% unknown users, keep-alive connections",
        "targets": TARGETS,
        "met": {"p99_ms": float(np.percentile(latencies, 99)) < TARGETS["p99_ms"],
                "requests_per_second": rps >= TARGETS["requests_per_second"]},
    }
    path = write_result("serving", figures)
    return {"path": str(path), **figures}
