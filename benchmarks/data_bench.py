"""`recsys bench data`: 1M generated events through extract, validate and preprocess.

Generation runs in its own process so the steps' peak memory is their own.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recsys.benchmarks.machine import write_result
from recsys.components.extract.extract import ExtractConfig, extract
from recsys.components.preprocess.config import PreprocessConfig
from recsys.components.preprocess.preprocess import preprocess_window
from recsys.components.validate.rules import ValidationConfig
from recsys.components.validate.validate import validate_window
from recsys.core.lake import Lake
from recsys.core.progress import peak_rss_mb

TARGET_SECONDS = 60.0
TARGET_PEAK_MB = 3 * 1024


def run_steps(source: str, lake_dir: str) -> dict:
    """Time the three steps in this process; returns seconds per step and peak RSS."""
    lake = Lake(lake_dir)
    seconds = {}
    started = time.perf_counter()
    report, _ = extract(ExtractConfig(source=source), lake)
    seconds["extract"] = time.perf_counter() - started
    started = time.perf_counter()
    validated = validate_window(lake, ValidationConfig())
    seconds["validate"] = time.perf_counter() - started
    started = time.perf_counter()
    _, processed = preprocess_window(lake, PreprocessConfig())
    seconds["preprocess"] = time.perf_counter() - started
    return {"seconds": {k: round(v, 2) for k, v in seconds.items()},
            "rows_read": report.rows_read, "rows_clean": validated.report.rows_clean,
            "rows_quarantined": validated.report.rows_quarantined + report.rows_quarantined,
            "train_interactions": processed.summary["train_interactions"],
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def bench_data(events: int = 1_000_000, seed: int = 7) -> dict:
    with tempfile.TemporaryDirectory(prefix="recsys-bench-data-") as tmp:
        source = Path(tmp) / "shop.jsonl"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "recsys.cli.main", "generate", "--events",
                        str(events), "--seed", str(seed), "--out", str(source),
                        "--dirt-duplicates", "0.01", "--dirt-missing-price", "0.01",
                        "--dirt-malformed", "0.001", "--dirt-unknown-event-type", "0.002"],
                       check=True, stdout=subprocess.DEVNULL)
        generate_seconds = time.perf_counter() - started
        child = subprocess.run(
            [sys.executable, "-c", "import json,sys; "
             "from recsys.benchmarks.data_bench import run_steps;"
             " print(json.dumps(run_steps(sys.argv[1], sys.argv[2])))", str(source),
             str(Path(tmp) / "lake")], check=True, capture_output=True, text=True)
        steps = json.loads(child.stdout.strip().splitlines()[-1])
        source_mb = source.stat().st_size / 2**20
    total = sum(steps["seconds"].values())
    figures = {
        "events": events, "source_format": "jsonl", "source_mb": round(source_mb, 1),
        "generate_seconds": round(generate_seconds, 2), **steps,
        "steps_total_seconds": round(total, 2),
        "events_per_second": round(events / total),
        "targets": {"steps_total_seconds": TARGET_SECONDS, "peak_rss_mb": TARGET_PEAK_MB,
                    "generate_seconds": TARGET_SECONDS},
        "met": {"steps_total_seconds": total < TARGET_SECONDS,
                "peak_rss_mb": steps["peak_rss_mb"] < TARGET_PEAK_MB,
                "generate_seconds": generate_seconds < TARGET_SECONDS},
    }
    path = write_result("data", figures)
    return {"path": str(path), **figures}
