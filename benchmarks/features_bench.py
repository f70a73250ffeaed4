"""`recsys bench features`: Feast materialize throughput and online read latency,
SQLite (embedded default) vs Redis (production profile with a PostgreSQL registry)."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.benchmarks.machine import write_result
from recsys.components.features.tables import ITEM_STATS_COLUMNS, USER_STATS_COLUMNS, write_snapshot
from recsys.core.data.lake import Lake
from recsys.core.settings import Settings
from recsys.feature_repo.features.online import OnlineFeatureReader, online_features
from recsys.feature_repo.features.store import apply_repo, materialize, open_store
from recsys.tools.local_services import temporary_postgres_database

USERS, ITEMS, CANDIDATES, READS = 100_000, 20_000, 100, 300
TARGETS = {"materialize_users_seconds": 30.0, "redis_p99_ms": 10.0}


def feature_frames(users: int, items: int, as_of: pd.Timestamp, seed: int = 0):
    rng = np.random.default_rng(seed)
    user_frame = pd.DataFrame({
        "user_id": [f"u{i:07d}" for i in range(users)],
        "purchases": rng.poisson(1.0, users), "events": rng.poisson(20, users) + 1,
        "unique_items": rng.poisson(8, users) + 1, "avg_spend": rng.lognormal(3, 1, users),
        "total_spend": rng.lognormal(4, 1, users),
        "preferred_category": rng.choice(["books", "home", "sport"], users),
        "preferred_time_of_day": rng.choice(["morning", "evening"], users),
        "days_since_last_event": rng.uniform(0, 30, users), "feature_timestamp": as_of})
    item_frame = pd.DataFrame({
        "item_id": [f"p{i:06d}" for i in range(items)], "views": rng.poisson(50, items),
        "unique_users": rng.poisson(30, items), "purchases": rng.poisson(2, items),
        "conversion_rate": rng.uniform(0, 0.1, items), "avg_price": rng.lognormal(3, 1, items),
        "price_band": rng.choice(["budget", "mid", "premium", "luxury"], items),
        "popularity_score": rng.exponential(5, items),
        "category": rng.choice(["books", "home", "sport"], items),
        "brand": rng.choice(["acme", "zen"], items), "feature_timestamp": as_of})
    return user_frame, item_frame


def measure(settings: Settings, profile: str, users: pd.DataFrame, rng) -> dict:
    store, repo = open_store(settings, profile=profile)
    apply_repo(store, repo)
    end = pd.Timestamp.now(tz="UTC").to_pydatetime()
    started = time.perf_counter()
    materialize(store, end, ["user_stats"])
    user_seconds = time.perf_counter() - started
    started = time.perf_counter()
    materialize(store, end, ["item_stats"])
    item_seconds = time.perf_counter() - started
    user_ids = users["user_id"].to_numpy()
    # candidates come from a popular head (as a recommender's do), so a cache can help
    items = [f"p{i:06d}" for i in range(2_000)]
    requests = [(str(rng.choice(user_ids)), list(rng.choice(items, CANDIDATES, replace=False)))
                for _ in range(READS + 20)]
    latencies = _latencies(lambda u, c: online_features(store, [u], c), requests)
    reader = OnlineFeatureReader(store, item_ttl_seconds=60)
    cached = _latencies(reader.read_one, requests)
    return {"materialize_users_seconds": round(user_seconds, 2),
            "materialize_users_per_second": round(len(users) / user_seconds),
            "materialize_items_seconds": round(item_seconds, 2),
            "read_p50_ms": round(float(np.percentile(latencies, 50)), 2),
            "read_p99_ms": round(float(np.percentile(latencies, 99)), 2),
            "cached_items_read_p50_ms": round(float(np.percentile(cached, 50)), 2),
            "cached_items_read_p99_ms": round(float(np.percentile(cached, 99)), 2),
            "reads": READS}


def _latencies(read, requests) -> list[float]:
    out = []
    for n, (user, candidates) in enumerate(requests):
        started = time.perf_counter()
        read(user, candidates)
        if n >= 20:  # warm-up excluded
            out.append((time.perf_counter() - started) * 1000)
    return out


def bench_features() -> dict:
    import redis

    rng = np.random.default_rng(1)
    as_of = pd.Timestamp.now(tz="UTC").floor("s") - pd.Timedelta(hours=1)
    users, items = feature_frames(USERS, ITEMS, as_of)
    results = {}
    cache = redis.Redis(host="127.0.0.1", port=6379, db=8)
    cache.flushdb()
    try:
        with tempfile.TemporaryDirectory(prefix="recsys-bench-features-") as tmp, \
                temporary_postgres_database("feast_bench") as registry_url:
            lake_dir = Path(tmp) / "lake"
            lake = Lake(str(lake_dir))
            write_snapshot(lake, "user_stats", users, USER_STATS_COLUMNS)
            write_snapshot(lake, "item_stats", items, ITEM_STATS_COLUMNS)
            settings = Settings(state_dir=Path(tmp) / "state", lake_uri=str(lake_dir),
                                redis_url="redis://127.0.0.1:6379/8",
                                feast_registry_url=registry_url)
            results["sqlite"] = measure(settings, "local", users, rng)
            results["redis"] = measure(settings, "production", users, rng)
    finally:
        cache.flushdb()
    figures = {
        "users": USERS, "items": ITEMS, "request": f"1 user + {CANDIDATES} candidate items "
        "(user_stats, user_session, item_stats, on-demand price_fit)", **results,
        "targets": TARGETS,
        "met": {"materialize_users_seconds": results["redis"]["materialize_users_seconds"]
                < TARGETS["materialize_users_seconds"]
                and results["sqlite"]["materialize_users_seconds"]
                < TARGETS["materialize_users_seconds"],
                "redis_p99_ms": results["redis"]["read_p99_ms"] < TARGETS["redis_p99_ms"],
                "redis_p99_ms_with_item_cache": results["redis"]["cached_items_read_p99_ms"]
                < TARGETS["redis_p99_ms"]},
    }
    path = write_result("features", figures)
    return {"path": str(path), **figures}
