"""The Evidently workspace the UI reads: one project, one run per report, over time.

The lake is the record: `recsys monitor run` writes each report's Evidently snapshot next to
its HTML (`reports/drift/date=D/HHMMSS/snapshot.json`, and `quality_snapshot.json` for the
served lists' quality). The workspace folder is a view of them that can be thrown away: on
the embedded default the monitor also adds each run to `<state dir>/evidently` directly; in
a pod (where that folder dies with the step) `recsys monitor ui` rebuilds it from the lake
first (`sync_from_lake`), adding only the snapshots it has not added before (the monitor's
own additions count as added: a run is not listed, or charted, twice).

Each monitoring run also adds a "figures" run (`monitoring/dashboard.py`), built from its
`summary.json`, which the project's dashboard charts over time; the dashboard is given to
the project whenever `publish` opens it (once: a second time changes nothing).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from evidently.core.report import Snapshot
from evidently.ui.workspace import Workspace

from recsys.core.data.lake import Lake
from recsys.monitoring.dashboard import ensure_dashboard, figures_snapshot

DEFAULT_PROJECT = "recsys data drift"
REPORTS_PREFIX = "reports/drift"
SNAPSHOT_FILES = {"snapshot.json": "drift", "quality_snapshot.json": "served quality",
                  "summary.json": "figures"}
"""Lake files of a monitoring run that become workspace runs (summary.json: its figures)."""
SYNCED_INDEX = "recsys_synced_from_lake.json"
"""Lake keys of the snapshots already added to a workspace (in the workspace folder)."""


def publish(snapshot, workspace_dir: str | Path, project_name: str = DEFAULT_PROJECT,
            name: str | None = None, lake_key: str | None = None) -> str:
    """Add a report run to the workspace (creating it and the project when needed, and
    giving the project its dashboard). `lake_key`: the lake file the snapshot was written
    to, so that `sync_from_lake` does not add it again."""
    workspace = Workspace.create(str(workspace_dir))
    found = workspace.search_project(project_name)
    project = found[0] if found else workspace.create_project(
        project_name, description="Evidently drift reports of the recommender's events")
    ensure_dashboard(workspace, project.id)
    workspace.add_run(project.id, snapshot, name=name)
    if lake_key is not None:
        _record_synced(Path(workspace_dir), lake_key)
    return str(project.id)


def _synced(workspace_dir: Path) -> set[str]:
    index_path = workspace_dir / SYNCED_INDEX
    return set(json.loads(index_path.read_text())) if index_path.exists() else set()


def _record_synced(workspace_dir: Path, key: str) -> None:
    (workspace_dir / SYNCED_INDEX).write_text(json.dumps(sorted(_synced(workspace_dir) | {key})))


def run_stamp(key: str) -> pd.Timestamp:
    """The UTC time of a monitoring run from its lake folder (reports/drift/date=D/HHMMSS)."""
    folder = key.rsplit("/", 1)[0].split("/")
    return pd.Timestamp(f"{folder[-2].removeprefix('date=')} {folder[-1][:2]}:"
                        f"{folder[-1][2:4]}:{folder[-1][4:6]}")


def sync_from_lake(lake: Lake, workspace_dir: str | Path) -> int:
    """Add to the workspace every snapshot in the lake it does not hold yet; returns how
    many were added."""
    workspace_dir = Path(workspace_dir)
    workspace_dir.mkdir(parents=True, exist_ok=True)
    synced = _synced(workspace_dir)
    added = 0
    for key in sorted(lake.list(REPORTS_PREFIX)):
        kind = SNAPSHOT_FILES.get(key.rsplit("/", 1)[-1])
        if kind is None or key in synced:
            continue
        text = lake.read_bytes(key).decode("utf-8")
        stamp = run_stamp(key)
        snapshot = figures_snapshot(json.loads(text), stamp.to_pydatetime()) \
            if kind == "figures" else Snapshot.loads(text)
        if snapshot is not None:
            # recorded after each: a crash repeats none
            publish(snapshot, workspace_dir, name=f"{kind} {stamp:%Y-%m-%d %H:%M} (from the lake)",
                    lake_key=key)
            added += 1
        else:
            _record_synced(workspace_dir, key)
    return added
