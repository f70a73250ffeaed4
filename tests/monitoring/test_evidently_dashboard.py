"""The Evidently project's dashboard (monitoring/dashboard.py): after two monitoring runs it
holds the four trend panels once, Evidently's own series code gives each two points with the
runs' figures, and the UI (`recsys monitor ui`, headless Chromium) draws them."""
import asyncio
import json
import math
import os
import re
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pandas as pd
import pytest
from evidently.sdk.models import PanelMetric
from evidently.sdk.panels import line_plot_panel
from evidently.ui.service.base import SeriesFilter
from evidently.ui.service.storage.local.base import InMemoryDataStorage
from evidently.ui.workspace import Workspace
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.core.data.lake import Lake
from recsys.core.data.synthetic.config import ShopConfig
from recsys.core.data.synthetic.generate import generate_shop
from recsys.core.settings import Settings
from recsys.monitoring import dashboard, monitor
from recsys.monitoring.config import DriftConfig
from recsys.monitoring.workspace import DEFAULT_PROJECT, run_stamp, sync_from_lake
from recsys.tools.local_services import wait_for_http
from tests.conftest import free_port
from tests.monitoring.test_viewer import chromium

EXPECTED = {  # panel title -> the MeanValue column its one series reads
    "Drift share": "drifted_share", "Drifted columns": "drifted_columns",
    "Served coverage": "served_coverage", "Served NDCG@10": "served_ndcg_at_10"}
SERVED = [{"coverage": 0.25, "ndcg": 0.31}, {"coverage": 0.35, "ndcg": 0.52}]
"""What the stubbed served-list parts report in run 1 and run 2."""


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two `monitor()` runs: the real drift report, lake writes and workspace hook; the
    champion lookup, MLflow and the served-list parts stubbed. Run 2's current window has
    prices x1.5 and a new traffic source, so its drift figures differ from run 1's."""
    root = tmp_path_factory.mktemp("dashboard")
    events = generate_shop(ShopConfig(events=3_000, seed=2, end="2026-10-31")).events
    half = np.random.default_rng(0).random(len(events)) < 0.5
    reference, same = events[half], events[~half]
    shifted = same.assign(price=same["price"] * 1.5, utm_source="newsletter")
    end = pd.Timestamp("2026-10-31", tz="UTC")
    settings_ = Settings(state_dir=root / "state", lake_uri=str(root / "lake"))
    summaries = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(monitor, "champion_training_window", lambda s: {
            "version": "1", "run_id": "r1", "start": None, "end": end})
        patch.setattr(monitor, "_log_to_mlflow", lambda s, summary, html: "mlflow-run")
        patch.setattr(monitor, "_tag_champion", lambda s, version, summary: None)
        patch.setattr(monitor, "feature_drift", lambda lake, at: {})
        for run, current in enumerate((same, shifted)):
            served = SERVED[run]
            patch.setattr(monitor, "read_window", lambda lake, zone, schema, start, stop=None,
                          current=current: reference if stop == end else current)
            patch.setattr(monitor, "prediction_drift", lambda s, lake, days, served=served: {
                "status": "computed", "current": {"coverage": served["coverage"]}})
            patch.setattr(monitor, "served_list_quality", lambda lake, days, served=served: (
                {"status": "computed", "k": 10, "ndcg_at_10": served["ndcg"]}, None))
            if run:
                time.sleep(1.05)  # a run's lake folder is named by the second
            summaries.append(monitor.monitor(settings_, DriftConfig(),
                                             current_end=end + pd.Timedelta(days=1)))
    return settings_, summaries


def _project(workspace_dir):
    workspace = Workspace(str(workspace_dir))
    return workspace, workspace.search_project(DEFAULT_PROJECT)[0]


def _series(workspace_dir, project_id, panel):
    """The points Evidently's UI gets for a panel (its storage's own series code)."""
    storage = InMemoryDataStorage(str(workspace_dir))
    filters = [SeriesFilter(tags=v.tags, metadata=v.metadata, metric=v.metric,
                            metric_labels=v.metric_labels) for v in panel.values]
    response = asyncio.run(storage.get_data_series(project_id, filters, None, None))
    return response.sources, response.series


def _check_dashboard(workspace_dir, summaries):
    workspace, project = _project(workspace_dir)
    model = workspace.get_dashboard(project.id)
    assert [(p.title, [(v.metric, v.metric_labels, v.tags) for v in p.values],
             p.plot_params["plot_type"]) for p in model.panels] == [
        (title, [("evidently:metric_v2:MeanValue", {"column": column}, [dashboard.TAG])],
         "line") for title, column in EXPECTED.items()]
    assert [(t.title, t.panels) for t in model.tabs] == [
        (dashboard.TAB, [p.id for p in model.panels])]
    for panel in model.panels:
        sources, series = _series(workspace_dir, project.id, panel)
        assert len(series) == 1, panel.title  # one line, not one per run
        column = panel.values[0].metric_labels["column"]
        expected = [dashboard.run_figures(s)[column] for s in summaries]
        assert series[0].values == pytest.approx(expected), panel.title
        assert [s.timestamp for s in sources] == [
            run_stamp(s["report_url"]).to_pydatetime() for s in summaries]


def test_two_monitoring_runs_give_the_dashboard_its_panels_once(two_runs):
    settings_, summaries = two_runs
    assert summaries[0]["drifted_share"] < summaries[1]["drifted_share"]
    assert summaries[0]["drifted_columns"] < summaries[1]["drifted_columns"]
    workspace_dir = settings_.state_dir / "evidently"
    _check_dashboard(workspace_dir, summaries)
    workspace, project = _project(workspace_dir)
    assert len(workspace.list_runs(project.id)) == 4  # drift and figures, twice
    # the lake's copies of those runs are known: the UI's sync adds none of them again
    lake = Lake(settings_.lake)
    assert sync_from_lake(lake, workspace_dir) == 0
    assert len(workspace.list_runs(project.id)) == 4
    # a workspace rebuilt from the lake (a pod's) gets the same dashboard and points
    rebuilt = workspace_dir.parent / "rebuilt"
    assert sync_from_lake(lake, rebuilt) == 4
    _check_dashboard(rebuilt, summaries)


def test_ensure_dashboard_writes_once_and_keeps_other_panels(tmp_path):
    workspace = Workspace.create(str(tmp_path))
    project = workspace.create_project(DEFAULT_PROJECT)
    assert dashboard.ensure_dashboard(workspace, project.id) is True
    first = workspace.get_dashboard(project.id)
    assert dashboard.ensure_dashboard(workspace, project.id) is False
    assert workspace.get_dashboard(project.id) == first
    # an engineer's own panel stays; one of ours edited in the UI is put back
    own = line_plot_panel("Rows", [PanelMetric(metric="RowCount")])
    project.dashboard.add_panel(own, tab="Mine")
    edited = workspace.get_dashboard(project.id)
    edited.panels[0].values[0].metric_labels = {"column": "something else"}
    workspace.save_dashboard(project.id, edited)
    assert dashboard.ensure_dashboard(workspace, project.id) is True
    model = workspace.get_dashboard(project.id)
    assert [p.title for p in model.panels] == ["Rows", *EXPECTED]
    assert model.panels[1].values[0].metric_labels == {"column": "drifted_share"}
    assert {t.title: len(t.panels) for t in model.tabs} == {"Mine": 1, dashboard.TAB: 4}
    assert dashboard.ensure_dashboard(workspace, project.id) is False


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
_part = st.fixed_dictionaries({}, optional={
    "status": st.sampled_from(["computed", "not computed: none"]) | _json,
    "current": st.fixed_dictionaries({}, optional={"coverage": _json}) | _json,
    "ndcg_at_10": _json})


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional={
    "drifted_share": _json, "drifted_columns": _json, "prediction_drift": _part | _json,
    "quality": _part | _json}) | _json)
def test_run_figures_reads_any_summary_json(summary):
    """summary.json comes from the lake: whatever it holds, the figures are finite numbers
    taken from the places the monitor writes them, and nothing else."""
    figures = dashboard.run_figures(json.loads(json.dumps(summary)))
    assert set(figures) <= set(EXPECTED.values())
    assert all(isinstance(v, float) and math.isfinite(v) for v in figures.values())
    if isinstance(summary, dict):
        for key in ("drifted_share", "drifted_columns"):
            value = summary.get(key)
            good = isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value)
            assert (key in figures) == good
            if good:
                assert figures[key] == float(value)
    else:
        assert figures == {}


def test_the_figures_run_of_a_summary_holds_its_figures():
    summary = {"drifted_share": 0.25, "drifted_columns": 2, "model_version": "3",
               "prediction_drift": {"status": "not computed: 0 lists"},
               "quality": {"status": "computed", "ndcg_at_10": 0.4}}
    when = pd.Timestamp("2026-10-31 01:02:03").to_pydatetime()
    snapshot = dashboard.figures_snapshot(summary, when)
    data = snapshot.dict()
    assert {(m["config"]["column"], m["value"]) for m in data["metrics"]} == {
        ("drifted_share", 0.25), ("drifted_columns", 2.0), ("served_ndcg_at_10", 0.4)}
    model = snapshot.to_snapshot_model()
    assert model.tags == [dashboard.TAG] and model.metadata == {"model_version": "3"}
    assert model.timestamp == when
    assert dashboard.figures_snapshot({"drifted_share": None}, when) is None


_LINE = re.compile(r'<path[^>]*\bd="([^"]+)"[^>]*class="MuiLineElement-root')


def _drawn(dom: str) -> dict[str, list[tuple[float, float]]]:
    """Panel title -> the (x, y) points of the line drawn under it."""
    drawn = {}
    for title in EXPECTED:
        start = dom.find(f">{title}</h5>")
        assert start >= 0, f"panel {title!r} not on the page"
        line = _LINE.search(dom, start)
        assert line, f"no line drawn in panel {title!r}"
        drawn[title] = [tuple(map(float, point.split(",")))
                        for point in re.findall(r"[ML]([\d.]+,[\d.]+)", line.group(1))]
    return drawn


@pytest.mark.integration
def test_the_ui_draws_each_panel_with_both_runs(two_runs, tmp_path):
    settings_, summaries = two_runs
    _, project = _project(settings_.state_dir / "evidently")
    port = free_port()
    ui = subprocess.Popen(
        [sys.executable, "-m", "recsys.cli.main", "monitor", "ui", "--port", str(port)],
        env={**os.environ, "RECSYS_STATE_DIR": str(settings_.state_dir),
             "RECSYS_LAKE_URI": settings_.lake},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for_http(f"{url}/api/projects", 60, ui), "evidently ui did not start"
        page = f"{url}/projects/{project.id}"  # the project's Dashboard tab
        dom = chromium(["--virtual-time-budget=15000", "--window-size=1400,1200",
                        "--dump-dom", page], tmp_path / "profile").stdout
        # the UI's start-up sync from the lake added no run twice
        with urllib.request.urlopen(f"{url}/api/projects/{project.id}/reports") as answer:
            assert len(json.load(answer)) == 4
    finally:
        ui.terminate()
        ui.wait(timeout=30)
    drawn = _drawn(dom)
    for title, column in EXPECTED.items():
        points = drawn[title]
        assert len(points) == 2, (title, points)  # one point per run
        first, second = (dashboard.run_figures(s)[column] for s in summaries)
        assert points[0][0] < points[1][0]  # later run further right
        # SVG y grows downwards: the larger figure is drawn higher
        assert (points[1][1] < points[0][1]) == (second > first), title
