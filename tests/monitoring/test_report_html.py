"""A drift report whose events carry script in every free-text column runs no script when
engineers open report.html, and the payload never appears raw in the file."""
import shutil
import subprocess

import numpy as np
import pytest

from recsys.core.data.synthetic.config import ShopConfig
from recsys.core.data.synthetic.generate import generate_shop
from recsys.monitoring.config import DriftConfig
from recsys.monitoring.drift import run_drift
from recsys.monitoring.html_report import report_html, script_safe_json

PAYLOAD = "</script><script>document.title='PWNED'</script>"
FREE_TEXT = ["utm_source", "referrer", "category", "brand", "device_type"]


@pytest.fixture(scope="module")
def poisoned_snapshot():
    events = generate_shop(ShopConfig(events=4_000, seed=9, end="2026-10-31")).events
    mask = np.random.default_rng(0).random(len(events)) < 0.5
    reference, current = events[mask], events[~mask].copy()
    rows = current.sample(frac=0.3, random_state=2).index
    for column in FREE_TEXT:
        current.loc[rows, column] = PAYLOAD
    return run_drift(reference, current, DriftConfig()).snapshot


def test_the_json_escapes_leave_the_values_intact():
    import json

    text = script_safe_json({"v": PAYLOAD + " & more"}, json.JSONEncoder)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"v": PAYLOAD + " & more"}


def test_the_payload_never_appears_raw(poisoned_snapshot):
    assert PAYLOAD in poisoned_snapshot.get_html_str(as_iframe=False)  # Evidently's own page
    assert PAYLOAD not in report_html(poisoned_snapshot)
    assert "</script><script>" not in report_html(poisoned_snapshot)


@pytest.mark.integration  # Debian's Chromium
def test_opened_in_a_browser_no_script_runs_and_the_report_draws(poisoned_snapshot, tmp_path):
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "Debian's chromium package is needed (make test installs it)"
    titles = {}
    for name, html in (("evidently", poisoned_snapshot.get_html_str(as_iframe=False)),
                       ("ours", report_html(poisoned_snapshot))):
        page = tmp_path / f"{name}.html"
        page.write_text(html, encoding="utf-8")
        dom = subprocess.run(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / name}",
             "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=120).stdout
        titles[name] = dom
    assert "<title>PWNED</title>" in titles["evidently"]  # the attack works on the raw page
    assert "<title>PWNED</title>" not in titles["ours"]  # ... and not on ours
    body = titles["ours"].split("<body", 1)[1]
    assert "Drifted" in body or "drift" in body.lower()  # the report itself still draws
