"""Alerts delivered: the shipped Alertmanager configuration passes amtool, and a real fault
(the collector process killed) makes a real Prometheus fire RecsysTargetDown, a real
Alertmanager route it to a Slack-compatible webhook, and the collector's return send the
resolution. The webhook is this test's own HTTP server collecting the POSTs."""
import copy
import json
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import yaml

from recsys.benchmarks.stream_load import worker_env
from recsys.core.settings import Settings
from recsys.tools.local_services import wait_for_http
from tests.conftest import REPO, free_port

ALERTMANAGER = REPO / "infra" / "alertmanager"
PROMETHEUS = REPO / "infra" / "prometheus"
TOKEN = "prometheus-scrape-token"
pytestmark = pytest.mark.integration


def amtool(*args: str) -> subprocess.CompletedProcess:
    assert shutil.which("amtool"), "amtool missing: tests/services.sh installs alertmanager"
    return subprocess.run(["amtool", *args], capture_output=True, text=True, timeout=60)


def test_the_alertmanager_config_passes_amtool():
    checked = amtool("check-config", str(ALERTMANAGER / "alertmanager.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "5 inhibit rules" in checked.stdout and "2 receivers" in checked.stdout


def test_routes_send_pages_and_tickets_to_their_receivers():
    config = str(ALERTMANAGER / "alertmanager.yml")
    for labels, receiver in (({"severity": "page"}, "recsys-page"),
                             ({"severity": "ticket"}, "recsys-ticket"),
                             ({"severity": "other"}, "recsys-ticket")):
        routed = amtool("config", "routes", "test", f"--config.file={config}",
                        *(f"{k}={v}" for k, v in labels.items()))
        assert routed.stdout.strip() == receiver, routed.stdout + routed.stderr


def test_every_rule_carries_the_silence_labels():
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert {"severity", "component", "service"} <= set(rule["labels"]), rule["alert"]
            assert rule["labels"]["severity"] in {"page", "ticket"}


class Webhook:
    """A Slack-compatible incoming webhook: keeps every JSON body POSTed to it."""

    def __init__(self):
        self.received: list[dict] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/recsys"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def texts(self) -> list[str]:
        return [a["title"] + "\n" + a["text"] for body in self.received
                for a in body.get("attachments", [])]


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.server.shutdown()


def delivery_config(tmp_path, webhook_url: str) -> dict:
    """The shipped config with the webhook's URL file here and 1 s waits."""
    config = yaml.safe_load((ALERTMANAGER / "alertmanager.yml").read_text())
    (tmp_path / "webhook-url").write_text(webhook_url)
    config["templates"] = [str(ALERTMANAGER / "templates" / "*.tmpl")]
    for route in [config["route"], *config["route"]["routes"]]:
        route.update(group_wait="1s", group_interval="1s")
    for receiver in config["receivers"]:
        for slack in receiver["slack_configs"]:
            assert slack["api_url_file"].startswith("/etc/alertmanager/secrets/")
            slack["api_url_file"] = str(tmp_path / "webhook-url")
    return config



def start_alertmanager(tmp_path, config: dict) -> tuple[subprocess.Popen, str]:
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
    checked = amtool("check-config", str(tmp_path / "alertmanager.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    port = free_port()
    process = subprocess.Popen(
        ["prometheus-alertmanager", f"--config.file={tmp_path / 'alertmanager.yml'}",
         f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{port}",
         "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "alertmanager.log", "w"))
    url = f"http://127.0.0.1:{port}"
    assert wait_for_http(f"{url}/-/ready", 60, process), \
        (tmp_path / "alertmanager.log").read_text()[-2000:]
    return process, url


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=30)


def test_a_cause_inhibits_its_symptoms(tmp_path, webhook):
    """Collector down holds back 'no events ingested', bus down holds back the lag; the
    causes themselves are delivered."""
    process, url = start_alertmanager(tmp_path, delivery_config(tmp_path, webhook.url))
    try:
        alerts = [
            {"alertname": "RecsysTargetDown", "severity": "page", "component": "stream",
             "service": "collector"},
            {"alertname": "RecsysNoEventsIngested", "severity": "ticket",
             "component": "stream", "service": "collector"},
            {"alertname": "RecsysStreamBusDown", "severity": "page", "component": "stream",
             "service": "bus"},
            {"alertname": "RecsysStreamLagHigh", "severity": "page", "component": "stream",
             "service": "stream-workers", "group": "lake-sink"},
            {"alertname": "RecsysServingSlow", "severity": "page", "component": "serving",
             "service": "serving"}]
        posted = requests.post(f"{url}/api/v2/alerts", json=[
            {"labels": labels, "annotations": {"summary": labels["alertname"],
                                               "runbook_url": "docs/operations.md#x"}}
            for labels in alerts], timeout=5)
        assert posted.status_code == 200, posted.text
        wanted = {"RecsysTargetDown", "RecsysStreamBusDown", "RecsysServingSlow"}
        assert wait_for(lambda: wanted <= delivered_names(webhook), 30), webhook.received
        state = {a["labels"]["alertname"]: a["status"] for a in
                 requests.get(f"{url}/api/v2/alerts", timeout=5).json()}
        assert state["RecsysNoEventsIngested"]["state"] == "suppressed"
        assert state["RecsysNoEventsIngested"]["inhibitedBy"]
        assert state["RecsysStreamLagHigh"]["state"] == "suppressed"
        assert {name for name, s in state.items() if s["state"] == "active"} == wanted
        time.sleep(2)  # two more group intervals: the symptoms stay held back
        assert delivered_names(webhook) == wanted
    finally:
        stop(process)


def delivered_names(webhook: Webhook) -> set[str]:
    return {line.split("] ", 1)[1].split(" (", 1)[0] for text in webhook.texts()
            for line in text.splitlines()[:1]}


def start_collector(env: dict, port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "recsys.cli.main", "stream", "collector",
                                "--port", str(port), "--allow-volatile-bus"], env=env, cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert wait_for_http(f"http://127.0.0.1:{port}/health", 120, process), \
        process.stderr.read()[-2000:]
    return process


@pytest.mark.slow
def test_a_killed_collector_pages_and_its_return_resolves(tmp_path, webhook):
    settings = Settings(state_dir=tmp_path / "state",
                        event_stream=f"test:{uuid.uuid4().hex[:8]}")
    env = {**worker_env(settings), "RECSYS_METRICS_TOKEN": TOKEN}
    collector_port = free_port()
    collector = start_collector(env, collector_port)
    alertmanager, alertmanager_url = start_alertmanager(tmp_path,
                                                        delivery_config(tmp_path, webhook.url))
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = "1s"  # the shipped `for` is minutes; the routing is what is tested
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    (tmp_path / "token").write_text(TOKEN)
    shipped = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
              "rule_files": ["rules.yml"], "alerting": copy.deepcopy(shipped["alerting"]),
              "scrape_configs": [{
                  "job_name": "recsys-collector", "metrics_path": "/metrics",
                  "authorization": {"credentials_file": str(tmp_path / "token")},
                  "static_configs": [{"targets": [f"127.0.0.1:{collector_port}"]}]}]}
    config["alerting"]["alertmanagers"][0]["static_configs"] = [
        {"targets": [alertmanager_url.removeprefix("http://")]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    prometheus = subprocess.Popen(
        ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "w"))
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        assert wait_for_http(f"http://127.0.0.1:{port}/-/ready", 60, prometheus)
        assert wait_for(lambda: _value(api, 'up{job="recsys-collector"}') == 1.0, 30), \
            (tmp_path / "prometheus.log").read_text()[-2000:]
        collector.send_signal(signal.SIGKILL)
        collector.wait(timeout=30)
        fired = wait_for(lambda: any("FIRING" in t and "RecsysTargetDown" in t
                                     for t in webhook.texts()), 45)
        assert fired, (webhook.received, (tmp_path / "alertmanager.log").read_text()[-2000:])
        # (RecsysNoEventsIngested fires too - no event is sent here - on the ticket route)
        message = next(b for b in target_down(webhook) if "FIRING" in b["attachments"][0]["title"])
        attachment = message["attachments"][0]
        assert message["channel"] == "#recsys-alerts"  # the page route's receiver
        assert attachment["title"] == \
            "[FIRING:1] RecsysTargetDown (page, stream/collector)"
        assert attachment["text"].splitlines() == [
            "*FIRING* Prometheus cannot scrape recsys-collector at "
            f"127.0.0.1:{collector_port}: the service is down, or the scrape times out "
            f"(instance 127.0.0.1:{collector_port})",
            "Runbook: docs/operations.md#recsystargetdown"]
        collector = start_collector(env, collector_port)
        resolved = wait_for(lambda: any(b["attachments"][0]["title"].startswith("[RESOLVED]")
                                        for b in target_down(webhook)), 45)
        assert resolved, webhook.received
        last = target_down(webhook)[-1]["attachments"][0]
        assert last["title"] == "[RESOLVED] RecsysTargetDown (page, stream/collector)"
        assert last["text"].startswith("*RESOLVED* Prometheus cannot scrape recsys-collector")
    finally:
        for process in (prometheus, alertmanager, collector):
            stop(process)


def target_down(webhook: Webhook) -> list[dict]:
    return [body for body in webhook.received
            if "RecsysTargetDown" in body["attachments"][0]["title"]]


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


def _value(api: str, query: str) -> float | None:
    result = requests.get(f"{api}/query", params={"query": query}, timeout=5).json()
    samples = result.get("data", {}).get("result", [])
    return float(samples[0]["value"][1]) if samples else None
