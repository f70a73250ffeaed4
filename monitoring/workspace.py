"""The Evidently workspace the UI reads: one project, one run per report, over time."""
from __future__ import annotations

from pathlib import Path

from evidently.ui.workspace import Workspace

DEFAULT_PROJECT = "recsys data drift"


def publish(snapshot, workspace_dir: str | Path, project_name: str = DEFAULT_PROJECT,
            name: str | None = None) -> str:
    """Add a report run to the workspace (creating it and the project when needed)."""
    workspace = Workspace.create(str(workspace_dir))
    found = workspace.search_project(project_name)
    project = found[0] if found else workspace.create_project(
        project_name, description="Evidently drift reports of the recommender's events")
    workspace.add_run(project.id, snapshot, name=name)
    return str(project.id)
