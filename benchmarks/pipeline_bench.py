"""`recsys bench pipeline`: the whole training pipeline on 1M generated events.

The pipeline runs in a child process (`recsys pipeline run`) with a fresh state directory
and caching off; seconds per step come from kfp.local's task start/finish log lines and
peak memory from the child's rusage (kfp.local runs each step as a grandchild process).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from recsys.benchmarks.machine import write_result

TARGET_SECONDS = 180.0
TARGET_PEAK_MB = 4 * 1024
_TASK_LINE = re.compile(
    r"^(\d\d:\d\d:\d\d\.\d+) - INFO - (Executing task|Task) \W*\[\d+m'([\w-]+)'")


# Runs the pipeline, then reports the largest RSS of this process and every step it ran.
_MEASURED_RUN = (
    "import resource, sys\n"
    "from recsys.cli.main import main\n"
    "code = main(['pipeline', 'run', '--source', sys.argv[1], '--no-cache'])\n"
    "peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,\n"
    "           resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "print(f'PEAK_RSS_MB={peak / 1024:.1f}')\n"
    "sys.exit(code)\n"
)


def step_seconds(log: str) -> dict[str, float]:
    """Seconds per task from kfp.local's 'Executing task' / 'Task ... finished' lines."""
    started, seconds = {}, {}
    for line in log.splitlines():
        match = _TASK_LINE.match(line.strip())
        if not match:
            continue
        moment = datetime.strptime(match.group(1), "%H:%M:%S.%f")
        task = match.group(3)
        if match.group(2) == "Executing task":
            started[task] = moment
        elif "finished" in line and task in started:
            seconds[task] = round((moment - started[task]).total_seconds(), 2)
    return seconds


def bench_pipeline(events: int = 1_000_000, seed: int = 7) -> dict:
    with tempfile.TemporaryDirectory(prefix="recsys-bench-pipeline-") as tmp:
        source = Path(tmp) / "shop.jsonl"
        subprocess.run([sys.executable, "-m", "recsys.cli.main", "generate", "--events",
                        str(events), "--seed", str(seed), "--out", str(source),
                        "--dirt-duplicates", "0.01", "--dirt-missing-price", "0.01"],
                       check=True, stdout=subprocess.DEVNULL)
        env = {**os.environ, "RECSYS_STATE_DIR": str(Path(tmp) / "state"),
               "RECSYS_NO_PROGRESS": "1"}
        for name in ("RECSYS_LAKE_URI", "RECSYS_MLFLOW_TRACKING_URI"):
            env.pop(name, None)
        started = time.perf_counter()
        child = subprocess.run([sys.executable, "-c", _MEASURED_RUN, str(source)], env=env,
                               capture_output=True, text=True)
        total = time.perf_counter() - started
        if child.returncode != 0:
            raise RuntimeError(f"pipeline failed:\n{child.stdout[-3000:]}\n{child.stderr[-3000:]}")
    peak_mb = float(re.findall(r"PEAK_RSS_MB=([\d.]+)", child.stdout)[-1])
    outcome = [line for line in child.stdout.strip().splitlines()
               if not line.startswith("PEAK_RSS_MB=")][-12:]
    figures = {
        "events": events, "seconds_per_step": step_seconds(child.stdout + child.stderr),
        "total_seconds": round(total, 2), "peak_rss_mb": round(peak_mb, 1),
        "outcome": outcome,
        "targets": {"total_seconds": TARGET_SECONDS, "peak_rss_mb": TARGET_PEAK_MB},
        "met": {"total_seconds": total < TARGET_SECONDS, "peak_rss_mb": peak_mb < TARGET_PEAK_MB},
        "note": "peak RSS is the largest single process (the steps run one at a time)",
    }
    path = write_result("pipeline", figures)
    return {"path": str(path), **figures}
