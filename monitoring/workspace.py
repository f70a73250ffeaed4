"""The Evidently workspace the UI reads: one project, one run per report, over time.

The lake is the record: `recsys monitor run` writes each report's Evidently snapshot next to
its HTML (`reports/drift/date=D/HHMMSS/snapshot.json`, and `quality_snapshot.json` for the
served lists' quality). The workspace folder is a view of them that can be thrown away: on
the embedded default the monitor also adds each run to `<state dir>/evidently` directly; in
a pod (where that folder dies with the step) `recsys monitor ui` rebuilds it from the lake
first (`sync_from_lake`), adding only the snapshots it has not added before.
"""
from __future__ import annotations

import json
from pathlib import Path

from evidently.core.report import Snapshot
from evidently.ui.workspace import Workspace

from recsys.core.data.lake import Lake

DEFAULT_PROJECT = "recsys data drift"
REPORTS_PREFIX = "reports/drift"
SNAPSHOT_FILES = {"snapshot.json": "drift", "quality_snapshot.json": "served quality"}
SYNCED_INDEX = "recsys_synced_from_lake.json"
"""Lake keys of the snapshots already added to a workspace (in the workspace folder)."""


def publish(snapshot, workspace_dir: str | Path, project_name: str = DEFAULT_PROJECT,
            name: str | None = None) -> str:
    """Add a report run to the workspace (creating it and the project when needed)."""
    workspace = Workspace.create(str(workspace_dir))
    found = workspace.search_project(project_name)
    project = found[0] if found else workspace.create_project(
        project_name, description="Evidently drift reports of the recommender's events")
    workspace.add_run(project.id, snapshot, name=name)
    return str(project.id)


def sync_from_lake(lake: Lake, workspace_dir: str | Path) -> int:
    """Add to the workspace every snapshot in the lake it does not hold yet; returns how
    many were added."""
    workspace_dir = Path(workspace_dir)
    workspace_dir.mkdir(parents=True, exist_ok=True)
    index_path = workspace_dir / SYNCED_INDEX
    synced = set(json.loads(index_path.read_text())) if index_path.exists() else set()
    added = 0
    for key in sorted(lake.list(REPORTS_PREFIX)):
        kind = SNAPSHOT_FILES.get(key.rsplit("/", 1)[-1])
        if kind is None or key in synced:
            continue
        snapshot = Snapshot.loads(lake.read_bytes(key).decode("utf-8"))
        folder = key.rsplit("/", 1)[0].split("/")  # reports/drift/date=D/HHMMSS
        when = f"{folder[-2].removeprefix('date=')} {folder[-1][:2]}:{folder[-1][2:4]}"
        publish(snapshot, workspace_dir, name=f"{kind} {when} (from the lake)")
        synced.add(key)
        added += 1
        index_path.write_text(json.dumps(sorted(synced)))  # after each: a crash repeats none
    return added
