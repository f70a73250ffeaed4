"""Alerts as code: the shipped rules pass promtool (syntax and unit tests), and a real
Prometheus scraping a real collector fires the bus-down alert when the bus goes away."""
import shutil
import subprocess
import threading
import time
import uuid

import pytest
import redis
import requests
import uvicorn
import yaml

from recsys.core.online.bearer_keys import BearerKeys
from recsys.streaming.collector import create_app
from recsys.streaming.lake_sink import GROUP as SINK_GROUP
from recsys.streaming.metrics import StreamSources
from recsys.streaming.redis_bus import RedisStreamBus
from recsys.tools.local_services import wait_for_http
from tests.conftest import REPO, free_port
from tests.streaming.conftest import keyed_access

PROMETHEUS = REPO / "infra" / "prometheus"
TOKEN = "prometheus-scrape-token"
pytestmark = pytest.mark.integration


def promtool(*args: str, cwd=PROMETHEUS) -> subprocess.CompletedProcess:
    assert shutil.which("promtool"), "promtool missing: tests/services.sh installs prometheus"
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def test_rules_pass_promtool_and_their_unit_tests():
    checked = promtool("check", "rules", "rules.yml")
    assert checked.returncode == 0 and "SUCCESS: 16 rules found" in checked.stdout
    tested = promtool("test", "rules", "rules_test.yml", "rules_test_daily.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_scrape_config_is_valid(tmp_path):
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (tmp_path / "token").write_text(TOKEN)
    for job in config["scrape_configs"]:  # same shape, the secret file where this test has it
        if job["job_name"] == "recsys-pipelines":  # the Pushgateway: no token
            continue
        assert job["authorization"]["credentials_file"].startswith("/etc/prometheus/secrets/")
        job["authorization"]["credentials_file"] = str(tmp_path / "token")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(PROMETHEUS / "rules.yml", tmp_path / "rules.yml")
    checked = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.fixture
def collector_on_a_port():
    """A collector (uvicorn, loopback) whose bus can be taken away: `bus.client` is swapped."""
    bus = RedisStreamBus(stream=f"test:{uuid.uuid4().hex[:8]}")
    access = keyed_access(metrics_keys=BearerKeys([TOKEN]))
    app = create_app(bus, access, observed=StreamSources(None, bus, (SINK_GROUP,)))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield bus, port
    server.should_exit = True
    thread.join(timeout=10)
    bus.client = redis.Redis(host="127.0.0.1", port=6379)
    bus.reset()


@pytest.mark.slow
def test_a_real_prometheus_fires_bus_down_when_the_bus_goes_away(tmp_path,
                                                                  collector_on_a_port):
    bus, collector_port = collector_on_a_port
    (tmp_path / "token").write_text(TOKEN)
    shutil.copy(PROMETHEUS / "rules.yml", tmp_path / "rules.yml")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "2s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yml"],
        "scrape_configs": [{"job_name": "recsys-collector", "metrics_path": "/metrics",
                            "authorization": {"credentials_file": str(tmp_path / "token")},
                            "static_configs": [{"targets": [f"127.0.0.1:{collector_port}"]}]}]}))
    port = free_port()
    prometheus = subprocess.Popen(
        ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "w"))
    api = f"http://127.0.0.1:{port}/api/v1"
    try:
        assert wait_for_http(f"http://127.0.0.1:{port}/-/ready", 60, prometheus), \
            (tmp_path / "prometheus.log").read_text()[-2000:]
        assert wait_for(lambda: _value(api, "recsys_stream_bus_up") == 1.0, 30), \
            (tmp_path / "prometheus.log").read_text()[-2000:]
        # healthy: nothing pending or firing but "no events ingested" (none is sent here)
        assert set(_alert_states(api)) <= {"RecsysNoEventsIngested"}
        bus.client = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
        fired = wait_for(lambda: _alert_states(api).get("RecsysStreamBusDown") == "firing", 60)
        assert fired, (_value(api, "recsys_stream_bus_up"), _value(api, "up"), _alert_states(api))
        assert _value(api, "up") == 1.0  # the scrapes themselves kept answering, in time
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=30)


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


def _alert_states(api: str) -> dict[str, str]:
    alerts = requests.get(f"{api}/alerts", timeout=5).json()["data"]["alerts"]
    return {a["labels"]["alertname"]: a["state"] for a in alerts}
