"""Who measured what, where and when: the header of every benchmark result."""
from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

RESULTS_DIR = Path("benchmarks/results")


def machine() -> dict:
    memory_gib = None
    try:
        with open("/proc/meminfo") as handle:
            kib = int(handle.readline().split()[1])
        memory_gib = round(kib / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "memory_gib": memory_gib,
            "python": platform.python_version(), "platform": platform.platform()}


def write_result(area: str, figures: dict, results_dir: Path = RESULTS_DIR) -> Path:
    """Write benchmarks/results/<area>.json with figures, machine and date."""
    results_dir.mkdir(parents=True, exist_ok=True)
    payload = {"area": area, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "machine": machine(), **figures}
    path = results_dir / f"{area}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path
