"""`recsys bench experiments`: the analysis of a large experiment, from the lake.

A three-arm experiment (30/35/35) of 1M users and 10M exposures (lists of 10 items) is
written to a local lake as the service and the sink write it (request-log Parquet files
with the experiment's columns, raw events partitioned by day: 1M clicks naming their list,
carts and purchases of shown items, a pre-period), untimed. Timed: `evaluate()`, what
`recsys experiment analyze` runs - reading the exposures and events, per-user outcomes with
last-touch attribution, the statistics and the verdict. Target: under 60 s.
"""
from __future__ import annotations

import tempfile
import time
from datetime import timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from recsys.benchmarks.machine import write_result
from recsys.core.event_store import RAW_ZONE, append_partitioned
from recsys.core.lake import Lake
from recsys.core.request_log import SCHEMA, ZONE
from recsys.core.schema import RAW_EVENT_SCHEMA
from recsys.experiments.assignment import Assigner
from recsys.experiments.definition import ExperimentDefinition, parse_variants
from recsys.experiments.evaluate import evaluate

USERS, EXPOSURES, ITEMS, LIST_SIZE, DAYS = 1_000_000, 10_000_000, 50_000, 10, 14
TARGET_SECONDS = 60.0
START = pd.Timestamp("2026-11-01", tz="UTC")


def write_experiment(lake: Lake, definition: ExperimentDefinition, users: int,
                     exposures: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    user_ids = np.array([f"u{i:07d}" for i in range(users)], dtype=object)
    assigner = Assigner(definition)
    variant_of = np.array([assigner.assign(u).variant for u in user_ids], dtype=object)
    lift = {"control": 1.0, "a": 1.03, "b": 1.06}
    who = rng.integers(0, users, exposures)
    start_ms = START.value // 1_000_000
    shown_ms = np.sort(start_ms + rng.integers(0, DAYS * 86_400_000, exposures))
    items = rng.integers(0, ITEMS, (exposures, LIST_SIZE))
    rec_ids = np.char.add("r", np.arange(exposures).astype(str)).astype(object)
    variants = variant_of[who]
    per_day = 86_400_000
    for day in range(DAYS):
        low, high = np.searchsorted(shown_ms, [start_ms + day * per_day,
                                               start_ms + (day + 1) * per_day])
        flat = pa.array(items[low:high].ravel().astype(str).astype(object), pa.string())
        offsets = pa.array(np.arange(0, (high - low + 1) * LIST_SIZE, LIST_SIZE,
                                     dtype=np.int32))
        n = high - low
        table = pa.table({
            "timestamp": pa.array(shown_ms[low:high], pa.timestamp("ms", tz="UTC")),
            "endpoint": pa.array(["recommend"] * n), "user_id": user_ids[who[low:high]],
            "model_version": pa.array(["1"] * n), "path": pa.array(["model"] * n),
            "fallback": pa.array(np.zeros(n, bool)), "cached": pa.array(np.zeros(n, bool)),
            "k": pa.array(np.full(n, LIST_SIZE, np.int32)),
            "item_ids": pa.ListArray.from_arrays(offsets, flat),
            "scores": pa.ListArray.from_arrays(offsets, pa.array(
                np.ones((high - low) * LIST_SIZE))),
            "experiment": pa.array([definition.name] * n), "variant": variants[low:high],
            "recommendation_id": rec_ids[low:high]}, schema=SCHEMA)
        day_name = (START + pd.Timedelta(days=day)).date()
        lake.write_table(f"{ZONE}/date={day_name}/part-{day:04d}.parquet", table)
    rate = 0.1 * np.array([lift[v] for v in variants])
    clicked = np.flatnonzero(rng.random(exposures) < rate)
    bought = clicked[rng.random(clicked.size) < 0.1]
    click_events = pd.DataFrame({
        "event_id": "c" + pd.Series(clicked).astype(str), "user_id": user_ids[who[clicked]],
        "item_id": items[clicked, 0].astype(str), "event_type": "click",
        "timestamp": pd.to_datetime(shown_ms[clicked] + 20_000, unit="ms", utc=True),
        "price": np.nan, "recommendation_id": rec_ids[clicked]})
    purchases = pd.DataFrame({
        "event_id": "p" + pd.Series(bought).astype(str), "user_id": user_ids[who[bought]],
        "item_id": items[bought, 0].astype(str), "event_type": "purchase",
        "timestamp": pd.to_datetime(shown_ms[bought] + 3_600_000, unit="ms", utc=True),
        "price": rng.uniform(5, 200, bought.size).round(2), "recommendation_id": None})
    pre_users = rng.integers(0, users, users)
    pre = pd.DataFrame({
        "event_id": "v" + pd.Series(np.arange(users)).astype(str),
        "user_id": user_ids[pre_users], "item_id": "p1", "event_type": "view",
        "timestamp": START - pd.to_timedelta(rng.integers(1, 13 * 86_400, users), unit="s"),
        "price": np.nan, "recommendation_id": None})
    events = pd.concat([click_events, purchases, pre], ignore_index=True)
    for column in RAW_EVENT_SCHEMA.names:
        if column not in events:
            events[column] = None
    events["timestamp"] = events["timestamp"].dt.floor("ms").astype("datetime64[ms, UTC]")
    append_partitioned(lake, RAW_ZONE, events[RAW_EVENT_SCHEMA.names], "event_id",
                       RAW_EVENT_SCHEMA)
    return {"clicks": int(clicked.size), "purchases": int(bought.size),
            "pre_period_events": users}


def bench_experiments(users: int = USERS, exposures: int = EXPOSURES) -> dict:
    definition = ExperimentDefinition(
        name="bench", starts_at=START.to_pydatetime(),
        ends_at=(START + pd.Timedelta(days=DAYS)).to_pydatetime(),
        variants=parse_variants("control=popularity:30,a=champion:35,b=challenger:35"))
    with tempfile.TemporaryDirectory(prefix="recsys-bench-experiments-") as folder:
        lake = Lake(folder)
        began = time.perf_counter()
        written = write_experiment(lake, definition, users, exposures)
        setup = time.perf_counter() - began
        began = time.perf_counter()
        summary, _ = evaluate(lake, definition, [], now=definition.ends_at
                              + timedelta(days=2))
        seconds = time.perf_counter() - began
    figures = {
        "users": users, "exposures": exposures, "list_size": LIST_SIZE, **written,
        "analysis_seconds": round(seconds, 1), "setup_seconds": round(setup, 1),
        "verdict": summary["verdict"], "winner": summary["winner"],
        "users_analysed": summary["data"]["users"],
        "setup": "three arms 30/35/35 with true CTR lifts of +3% (a) and +6% (b); local "
                 "lake; timed: evaluate() = read exposures and events, outcomes, statistics",
        "targets": {"analysis_seconds": TARGET_SECONDS},
        "met": {"analysis_seconds": seconds < TARGET_SECONDS},
    }
    path = write_result("experiments", figures)
    return {"path": str(path), **figures}
