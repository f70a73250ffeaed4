"""`recsys monitor ui`, run as a real process over a workspace holding a report whose
events carry script: reading works; cross-site, secret-less and wrong-secret writes, foreign `Host`
headers and the unescaped report download do not."""
import json
import subprocess
import sys

import numpy as np
import pytest
import requests

from recsys.core.data.synthetic.config import ShopConfig
from recsys.core.data.synthetic.generate import generate_shop
from recsys.monitoring.config import DriftConfig
from recsys.monitoring.drift import run_drift
from recsys.monitoring.workspace import publish
from recsys.tools.local_services import wait_for_http
from tests.conftest import REPO, free_port
from tests.http_probes import endless_header

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PAYLOAD = "</script><script>document.title='PWNED'</script>"
SECRET = "ui-secret-for-tests"


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    state = tmp_path_factory.mktemp("ui") / "state"
    events = generate_shop(ShopConfig(events=1_500, seed=9, end="2026-10-31")).events
    mask = np.random.default_rng(0).random(len(events)) < 0.5
    reference, current = events[mask], events[~mask].copy()
    current.loc[current.sample(frac=0.3, random_state=2).index, "utm_source"] = PAYLOAD
    project_id = publish(run_drift(reference, current, DriftConfig()).snapshot,
                         state / "evidently")
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(state.parent), "PYTHONPATH": str(REPO.parent),
           "RECSYS_STATE_DIR": str(state), "RECSYS_MONITOR_UI_SECRET": SECRET,
           "RECSYS_NO_PROGRESS": "1"}
    log = state.parent / "ui.log"
    process = subprocess.Popen([sys.executable, "-m", "recsys.cli.main", "monitor", "ui",
                                "--port", str(port)], env=env, stdout=open(log, "w"),
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_for_http(f"{url}/api/version", 120, process):
            pytest.fail("the UI did not start:\n" + log.read_text()[-3000:])
        snapshot_id = requests.get(f"{url}/api/projects/{project_id}/snapshots",
                                   timeout=10).json()[0]["id"]
        yield {"url": url, "port": port, "project": project_id, "snapshot": snapshot_id}
    finally:
        process.terminate()
        process.wait(timeout=30)


def project_ids(ui) -> set[str]:
    answer = requests.get(f"{ui['url']}/api/v2/projects", timeout=10)
    assert answer.status_code == 200
    return {p["id"] for p in answer.json()}


def test_reading_needs_no_secret(ui):
    assert requests.get(f"{ui['url']}/", timeout=10).status_code == 200
    assert ui["project"] in project_ids(ui)


def test_a_cross_site_text_plain_post_is_refused_and_creates_nothing(ui):
    before = project_ids(ui)
    body = json.dumps({"name": "planted"})
    cross_site = requests.post(f"{ui['url']}/api/v2/projects", data=body, timeout=10,
                               headers={"Content-Type": "text/plain",
                                        "Origin": "http://evil.example"})
    assert cross_site.status_code == 403
    no_secret = requests.post(f"{ui['url']}/api/v2/projects", data=body, timeout=10,
                              headers={"Content-Type": "application/json"})
    assert no_secret.status_code == 401
    assert project_ids(ui) == before


def test_delete_needs_the_secret(ui):
    refused = requests.delete(f"{ui['url']}/api/v2/projects/{ui['project']}", timeout=10)
    assert refused.status_code == 401 and ui["project"] in project_ids(ui)
    # with the secret, from the UI's own page, writes work
    own = {"evidently-secret": SECRET, "Origin": ui["url"]}
    created = requests.post(f"{ui['url']}/api/v2/projects", json={"name": "scratch"},
                            headers=own, timeout=10)
    assert created.status_code == 201
    scratch = created.json()
    assert scratch in project_ids(ui)
    deleted = requests.delete(f"{ui['url']}/api/v2/projects/{scratch}", headers=own,
                              timeout=10)
    assert deleted.status_code == 204 and scratch not in project_ids(ui)


def test_a_wrong_secret_is_refused_on_every_write_and_changes_nothing(ui):
    before = project_ids(ui)
    snapshots = requests.get(f"{ui['url']}/api/projects/{ui['project']}/snapshots",
                             timeout=10).json()
    for wrong in ("wrong", SECRET[:-1], SECRET + "x", SECRET.upper(), ""):
        headers = {"evidently-secret": wrong, "Origin": ui["url"]}  # only the secret is off
        created = requests.post(f"{ui['url']}/api/v2/projects", json={"name": "planted"},
                                headers=headers, timeout=10)
        assert created.status_code == 401, (wrong, created.text)
        deleted = requests.delete(f"{ui['url']}/api/v2/projects/{ui['project']}",
                                  headers=headers, timeout=10)
        assert deleted.status_code == 401, (wrong, deleted.text)
    assert project_ids(ui) == before
    assert requests.get(f"{ui['url']}/api/projects/{ui['project']}/snapshots",
                        timeout=10).json() == snapshots


def test_a_foreign_host_header_is_refused(ui):
    rebound = requests.get(f"{ui['url']}/api/v2/projects", timeout=10,
                           headers={"Host": f"attacker.example:{ui['port']}"})
    assert rebound.status_code == 403 and ui["project"] not in rebound.text
    local = requests.get(f"{ui['url']}/api/v2/projects", timeout=10,
                         headers={"Host": f"localhost:{ui['port']}"})
    assert local.status_code == 200


def test_the_report_download_has_the_data_escaped(ui):
    answer = requests.get(f"{ui['url']}/api/projects/{ui['project']}/{ui['snapshot']}/download",
                          timeout=60)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert PAYLOAD not in answer.text
    assert "\\u003c/script\\u003e\\u003cscript\\u003edocument.title" in answer.text
    unknown = requests.get(f"{ui['url']}/api/projects/{ui['project']}/"
                           f"{ui['project']}/download", timeout=10)
    assert unknown.status_code == 404


def test_the_ui_refuses_an_endless_header(ui):
    refused = endless_header(ui["port"], "/api/version")
    assert refused is not None and refused.sent <= 65_536 + 2 * 256 * 1024
