"""Who measured what, where and when: the header of every benchmark result."""
from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

RESULTS_DIR = Path("benchmarks/results")


def machine() -> dict:
    return {"cpus": os.cpu_count(), "cpu_model": _cpu_model(), "memory_gib": _memory_gib(),
            "python": platform.python_version(), "platform": platform.platform()}


def write_result(area: str, figures: dict, results_dir: Path = RESULTS_DIR) -> Path:
    """Write benchmarks/results/<area>.json with figures, machine and date."""
    results_dir.mkdir(parents=True, exist_ok=True)
    payload = {"area": area, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": machine(), **figures}
    path = results_dir / f"{area}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def _memory_gib() -> float | None:
    """Total memory from /proc/meminfo; None where there is no such file (not Linux)."""
    try:
        with open("/proc/meminfo") as handle:
            kib = int(handle.readline().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(kib / 1024 / 1024, 1)


def _cpu_model() -> str:
    """The CPU model from /proc/cpuinfo, else what the platform module knows."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return platform.processor() or ""
    return platform.processor() or ""
