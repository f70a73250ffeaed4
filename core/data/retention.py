"""Lake retention: whole date partitions older than each zone's policy are deleted.

A zone is a prefix of the lake whose objects sit in date partitions (`<key>=YYYY-MM-DD`
somewhere below the prefix): the raw, clean and quarantine zones by event date, serving's
request log and the monitoring reports by the day they were written. A policy is a number
of days (settings `retention_<zone>_days`; unset or 0: kept forever). A partition is
deleted when its day is before `today - days` (UTC), so today's and the policy's window
are kept; a partition of today or later is never deleted, nor anything outside the zone's
prefix, nor an object with no dated partition in its path (the quarantine's `unknown` day).

Deleting is object by object (the lake has no atomic folder delete): a run stopped
half-way leaves part of an expired day, which the next run deletes. `lake_sizes` measures
the whole lake per zone (`other`: everything outside the zones: snapshots, features,
files set aside as corrupt).
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from recsys.core.data.lake import Lake
from recsys.core.errors import LakeError
from recsys.core.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Zone:
    name: str
    prefix: str
    """Every object of the zone is below `<prefix>/`."""
    partition: str
    """The name of its date partition (`event_date`, `date`)."""


ZONES: tuple[Zone, ...] = (
    Zone("raw", "raw/events", "event_date"),
    Zone("clean", "clean/events", "event_date"),
    Zone("quarantine", "quarantine", "event_date"),
    Zone("request_log", "serving/requests", "date"),
    Zone("reports", "reports", "date"),
)
"""The request log's prefix is `recsys.core.online.request_log.ZONE`, the reports'
`recsys.monitoring.workspace.REPORTS_PREFIX` is below `reports` (core.data may not import
them; tests/core/data/test_retention.py checks they agree)."""
OTHER = "other"
ZONE_NAMES: tuple[str, ...] = tuple(z.name for z in ZONES)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def policies_from_settings(settings: Settings) -> dict[str, int | None]:
    """Days kept per zone (None: forever) from `retention_<zone>_days`."""
    return {zone.name: getattr(settings, f"retention_{zone.name}_days") or None
            for zone in ZONES}


@dataclass
class Partition:
    path: str
    """`<zone prefix>/.../<partition>=<day>`: everything below it goes together."""
    day: date
    keys: list[str] = field(default_factory=list)
    bytes: int = 0


def partitions(lake: Lake, zone: Zone) -> list[Partition]:
    """The dated partitions of a zone, oldest first, with their objects and sizes. Objects
    not below `<prefix>/` (an S3 prefix also matches `raw/events2/`) or with no valid date
    in their path are in none."""
    found: dict[str, Partition] = {}
    root = f"{zone.prefix}/"
    for key, size, _ in lake.describe(zone.prefix):
        if not key.startswith(root):
            continue
        pieces = key[len(root):].split("/")
        for depth, piece in enumerate(pieces[:-1]):  # a folder, never the file's own name
            name, sep, value = piece.partition("=")
            if not sep or name != zone.partition:
                continue
            day = _as_day(value)
            if day is None:
                break  # `unknown`, or not a date: kept
            path = root + "/".join(pieces[:depth + 1])
            partition = found.setdefault(path, Partition(path, day))
            partition.keys.append(key)
            partition.bytes += size
            break
    return sorted(found.values(), key=lambda p: (p.day, p.path))


def _as_day(text: str) -> date | None:
    if not _DAY.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def expired(lake: Lake, zone: Zone, days: int | None, today: date) -> list[Partition]:
    """The partitions of `zone` older than `days` before `today` (none for None or 0)."""
    if not days:
        return []
    oldest_kept = today - timedelta(days=days)
    return [p for p in partitions(lake, zone) if p.day < oldest_kept and p.day < today]


def retain(lake: Lake, policies: dict[str, int | None], today: date | None = None,
           dry_run: bool = False) -> dict:
    """Delete (or with `dry_run` only list) every expired partition of every zone; returns
    what went per zone and the lake's sizes afterwards."""
    unknown = sorted(set(policies) - set(ZONE_NAMES))
    if unknown:
        raise ValueError(f"no lake zone named {', '.join(unknown)}; zones: "
                         f"{', '.join(ZONE_NAMES)}")
    today = today or datetime.now(timezone.utc).date()
    zones = {}
    for zone in ZONES:
        days = policies.get(zone.name) or None
        going = expired(lake, zone, days, today)
        if not dry_run:
            for partition in going:
                delete_partition(lake, partition)
        zones[zone.name] = {
            "prefix": zone.prefix, "keep_days": days,
            "oldest_kept": (today - timedelta(days=days)).isoformat() if days else None,
            "partitions": [p.path for p in going],
            "objects": sum(len(p.keys) for p in going),
            "bytes": sum(p.bytes for p in going)}
        if going:
            log.info("lake retain: %s %d partition(s) of %s older than %d days (%d objects, "
                     "%d bytes)", "would delete" if dry_run else "deleted", len(going),
                     zone.name, days, zones[zone.name]["objects"], zones[zone.name]["bytes"])
    return {"lake": lake.uri, "today": today.isoformat(), "dry_run": dry_run, "zones": zones,
            "sizes": lake_sizes(lake)}


def delete_partition(lake: Lake, partition: Partition) -> None:
    """Delete a partition's objects (and, in a local lake, its folders once empty)."""
    for key in partition.keys:
        try:
            lake.delete(key)
        except LakeError:
            raise
        except Exception as exc:  # a read-only disk's OSError, an unreachable S3's botocore
            raise LakeError(f"cannot delete {lake.url(key)}: {exc}") from exc
    if lake.is_remote:
        return
    folder = Path(lake.uri) / partition.path
    for current, _, _ in sorted(os.walk(folder), key=lambda entry: -len(entry[0])):
        try:
            os.rmdir(current)  # only an empty folder: a write landing now keeps its own
        except OSError:
            pass


def lake_sizes(lake: Lake) -> dict[str, dict[str, int]]:
    """Bytes and objects per zone (and `other`), from one listing of the whole lake."""
    sizes = {name: {"bytes": 0, "objects": 0} for name in (*ZONE_NAMES, OTHER)}
    for key, size, _ in lake.describe(""):
        name = next((z.name for z in ZONES if key.startswith(f"{z.prefix}/")), OTHER)
        sizes[name]["bytes"] += size
        sizes[name]["objects"] += 1
    return sizes
