"""The Evidently UI over the workspace (`recsys monitor ui`), opened in a real headless
Chromium."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recsys.core.data.synthetic.config import ShopConfig
from recsys.core.data.synthetic.generate import generate_shop
from recsys.monitoring.config import DriftConfig
from recsys.monitoring.drift import run_drift
from recsys.monitoring.workspace import DEFAULT_PROJECT, publish
from recsys.tools.local_services import wait_for_http
from tests.conftest import REPO, free_port

ARTIFACTS = REPO / "build" / "test-artifacts"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


def chromium(args, profile: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "Debian's chromium package is needed (.ci/run installs it)"
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.integration
def test_the_viewer_shows_the_project_and_the_latest_report(tmp_path):
    events = generate_shop(ShopConfig(events=4_000, seed=2, end="2026-10-31")).events
    mask = np.random.default_rng(0).random(len(events)) < 0.5
    state = tmp_path / "state"
    workspace = state / "evidently"  # where `recsys monitor ui` looks
    for name in ("older report", "latest report"):
        result = run_drift(events[mask], events[~mask], DriftConfig())
        project_id = publish(result.snapshot, workspace, name=name)
    port = free_port()
    # the project's launcher: Evidently's app behind its guard (monitoring/ui_server.py)
    ui = subprocess.Popen([sys.executable, "-m", "recsys.cli.main", "monitor", "ui", "--port",
                           str(port)], env={**os.environ, "RECSYS_STATE_DIR": str(state)},
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for_http(f"{url}/api/projects", 60, ui), "evidently ui did not start"
        page = f"{url}/projects/{project_id}/reports"
        dom = chromium(["--virtual-time-budget=15000", "--dump-dom", page], tmp_path / "p1")
        assert DEFAULT_PROJECT in dom.stdout
        assert "latest report" in dom.stdout and "older report" in dom.stdout
        assert "1–2 of 2" in dom.stdout
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "evidently-ui-reports.png"
        chromium(["--virtual-time-budget=15000", "--window-size=1400,900",
                  f"--screenshot={shot}", page], tmp_path / "p2")
        assert shot.exists() and shot.stat().st_size > 10_000
    finally:
        ui.terminate()
        ui.wait(timeout=30)
