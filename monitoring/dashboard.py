"""The Evidently project's dashboard: the monitoring run's headline figures over time.

Evidently's dashboard draws a series from the metric results of the project's runs, and
keys a series by every parameter of its metric. The drift report's `DriftedColumnsCount`
carries the per-column thresholds, which the noise-floor calibration changes from run to
run (`monitoring/calibration.py`), so charting it directly would give each run its own
one-point series. Each monitoring run therefore adds one more run to the workspace,
"figures": a one-row Evidently report whose `MeanValue` metrics hold the run's figures
(their only parameter is the column name, the same every run), tagged `TAG`:

- `drifted_share` and `drifted_columns`: the drift report's share and number of drifted
  columns (`summary["drifted_share"]`, `summary["drifted_columns"]`);
- `served_coverage`: share of the catalogue in the lists served in the current window
  (`summary["prediction_drift"]["current"]["coverage"]`, when computed);
- `served_ndcg_at_10`: NDCG@10 of the served lists judged by what the users did next
  (`summary["quality"]["ndcg_at_10"]`, when computed).

A figure the run did not compute is left out of its figures run (a gap in the line, not a
zero). `ensure_dashboard` gives the project these panels in tab `TAB`, once: panels with
these titles are put back to this definition, tab `TAB` holds only them, other panels and
tabs are left alone.
"""
from __future__ import annotations

import math
import uuid
from datetime import datetime

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.report import Snapshot
from evidently.metrics import MeanValue
from evidently.sdk.models import DashboardModel, DashboardPanelPlot, DashboardTabModel, PanelMetric
from evidently.sdk.panels import line_plot_panel

TAG = "recsys-figures"
TAB = "Trends"
METRIC = "evidently:metric_v2:MeanValue"
_IDS = uuid.UUID("6f1e2a4c-5b0d-4e8a-9c3f-7d2b1a0e9f10")


def _panel(title: str, column: str, legend: str, description: str) -> DashboardPanelPlot:
    panel = line_plot_panel(title=title, description=description, size="half", values=[
        PanelMetric(legend=legend, tags=[TAG], metric=METRIC, metric_labels={"column": column})])
    panel.id = uuid.uuid5(_IDS, title)  # the same id every time: a panel is found again
    return panel


PANELS = [
    _panel("Drift share", "drifted_share", "share of drifted columns",
           "Share of the compared event columns whose drift passed their threshold"),
    _panel("Drifted columns", "drifted_columns", "drifted columns",
           "Number of event columns whose drift passed their threshold"),
    _panel("Served coverage", "served_coverage", "catalogue coverage",
           "Share of the catalogue in the lists served in the current window"),
    _panel("Served NDCG@10", "served_ndcg_at_10", "NDCG@10",
           "NDCG@10 of the served lists, judged by what the users did in the next 24 h"),
]
"""Column of each panel's series; `run_figures` gives the values."""


def run_figures(summary) -> dict[str, float]:
    """The figures of one monitoring run's summary (parsed summary.json) that were computed;
    anything missing, not computed or not a finite number is left out."""
    summary = summary if isinstance(summary, dict) else {}
    figures = {"drifted_share": summary.get("drifted_share"),
               "drifted_columns": summary.get("drifted_columns")}
    predictions = _part(summary, "prediction_drift")
    if predictions.get("status") == "computed":
        figures["served_coverage"] = _part(predictions, "current").get("coverage")
    quality = _part(summary, "quality")
    if quality.get("status") == "computed":
        figures["served_ndcg_at_10"] = quality.get("ndcg_at_10")
    return {name: float(value) for name, value in figures.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value)}


def _part(summary: dict, key: str) -> dict:
    part = summary.get(key)
    return part if isinstance(part, dict) else {}


def figures_snapshot(summary: dict, timestamp: datetime) -> Snapshot | None:
    """The "figures" run of one monitoring run (None when it computed none)."""
    figures = run_figures(summary)
    if not figures:
        return None
    frame = pd.DataFrame([figures])
    definition = DataDefinition(numerical_columns=list(figures))
    report = Report([MeanValue(column=name) for name in figures])
    version = summary.get("model_version") if isinstance(summary, dict) else None
    metadata = {"model_version": str(version)} if version is not None else {}
    return report.run(Dataset.from_pandas(frame, data_definition=definition), None,
                      timestamp=timestamp, tags=[TAG], metadata=metadata)


def ensure_dashboard(workspace, project_id) -> bool:
    """Give the project the panels of `PANELS` in tab `TAB`; returns whether it wrote.

    Idempotent: a dashboard that already holds them is not written; a panel with one of
    their titles but another definition is replaced; other panels and tabs are kept."""
    current = workspace.get_dashboard(project_id)
    ours = {panel.title for panel in PANELS}
    kept = [panel for panel in current.panels if panel.title not in ours]
    wanted = DashboardModel(
        panels=[*kept, *(panel.copy(deep=True) for panel in PANELS)],
        tabs=[tab.copy(update={"panels": [p for p in tab.panels
                                          if p in {k.id for k in kept}]})
              for tab in current.tabs if tab.title != TAB])
    wanted.tabs.append(DashboardTabModel(id=uuid.uuid5(_IDS, TAB), title=TAB,
                                         panels=[panel.id for panel in PANELS]))
    if _comparable(wanted) == _comparable(current):
        return False
    workspace.save_dashboard(project_id, wanted)
    return True


def _comparable(model: DashboardModel) -> tuple:
    panels = sorted((p.json(sort_keys=True) for p in model.panels))
    tabs = sorted((str(t.id), t.title or "", tuple(str(p) for p in t.panels))
                  for t in model.tabs)
    return tuple(panels), tuple(tabs)
