"""Metric names: those a dashboard's queries use, and those a scrape really exports."""
from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

_METRIC = re.compile(r"\b(recsys_[a-z0-9_]+)")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"),
             "summary": ("_count", "_sum"), "gauge": ("",), "unknown": ("",)}


def dashboard_metrics(path: Path) -> dict[str, set[str]]:
    """Panel title -> the recsys metric names its queries use."""
    dashboard = json.loads(Path(path).read_text())
    return {panel["title"]: {name for target in panel["targets"]
                             for name in _METRIC.findall(target["expr"])}
            for panel in dashboard["panels"]}


def exported_metrics(scrape_text: str) -> set[str]:
    """Every series name a scrape's families stand for (also families with no sample yet)."""
    names = set()
    for family in text_string_to_metric_families(scrape_text):
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names
