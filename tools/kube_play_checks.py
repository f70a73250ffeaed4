"""What `make kube-play` checks once its pods are ready, from the host through the ports
the pods publish on 127.0.0.1: events into the lake once, the champion served with a token,
every metrics endpoint behind the metrics token, MLflow's API behind its basic auth."""
from __future__ import annotations

import json
import time
import uuid

import requests

LAKE_URI = "s3://recsys-lake/shop"
LAKE_SECONDS = 150.0
MLFLOW_HOST = "recsys-mlflow.recsys.svc:5000"
"""The Host MLflow's `--allowed-hosts` admits (what the pods address)."""


def probe_command(container: dict, podman) -> list[str] | None:
    """The command that says a container is ready: its readiness probe, else its liveness
    probe (both exec probes after translation), else its image's HEALTHCHECK."""
    for probe in ("readinessProbe", "livenessProbe"):
        if "exec" in container.get(probe, {}):
            return list(container[probe]["exec"]["command"])
    found = podman("image", "inspect", container["image"], "--format",
                   "{{json .Config.Healthcheck}}", check=False).stdout.strip()
    test = (json.loads(found) or {}).get("Test") if found and found != "null" else None
    return list(test[1:]) if test and test[0] == "CMD" else None


def check_system(translation, values: dict, champion, s3: str, events: int) -> dict:
    published = translation.published
    checks = {"events": _events_land_once(
        f"http://127.0.0.1:{published[('recsys-collector', 'http')]}",
        values["recsys-collector-write-keys"]["keys"].strip(), champion, s3, events)}
    checks["serving"] = _serving_answers(
        f"http://127.0.0.1:{published[('recsys-mlserver-0', 'http')]}",
        values["recsys-serving-token"]["token"].strip(), champion)
    checks["metrics"] = _metrics_need_the_token(
        published, values["recsys-metrics-token"]["token"].strip())
    checks["mlflow"] = _mlflow_needs_a_login(
        f"http://127.0.0.1:{published[('recsys-mlflow', 'http')]}",
        values["recsys-mlflow-admin"]["password"])
    failures = failed_checks(checks, events, champion.version)
    return {**checks, "failures": failures, "passed": not failures}


def failed_checks(checks: dict, events: int, version: str) -> list[str]:
    """What in the report is not as a working system answers."""
    failures = []
    landed = checks["events"]
    if landed["answers"] != [202, 202]:
        failures.append(f"collector answered {landed['answers']} to the batch and its retry")
    if landed["without_key"] != 401:
        failures.append(f"collector answered {landed['without_key']} without a write key")
    if landed["in_lake"] != events or landed["distinct_in_lake"] != events:
        failures.append(f"{landed['in_lake']} rows ({landed['distinct_in_lake']} distinct) "
                        f"of {events} events in the lake")
    serving = checks["serving"]
    if (serving["with_token"], serving["without_token"]) != (200, 401):
        failures.append(f"serving answered {serving['with_token']} with its token, "
                        f"{serving['without_token']} without")
    elif serving["model_version"] != version or serving["fallback"] or serving["items"] != 3:
        failures.append(f"serving answered {serving}, not champion {version}'s 3 items")
    for owner, codes in checks["metrics"].items():
        if (codes["with_token"], codes["without_token"]) != (200, 401):
            failures.append(f"{owner} metrics: {codes}")
    mlflow = checks["mlflow"]
    if (mlflow["with_login"], mlflow["without_login"]) != (200, 401):
        failures.append(f"MLflow API: {mlflow}")
    return failures


def _events_land_once(collector: str, write_key: str, champion, s3: str,
                      count: int) -> dict:
    """Post a batch, then the same batch again (a client retrying), and read the lake's
    raw zone until every event is there (the sinks flush every 30 s)."""
    from recsys.core.data.event_store import RAW_ZONE
    from recsys.core.data.lake import Lake
    from recsys.core.data.schema import RAW_EVENT_SCHEMA

    prefix = f"kube-play-{uuid.uuid4().hex[:8]}-"
    now = int(time.time() * 1000)
    batch = [{"event_id": f"{prefix}{n}", "user_id": champion.known_user,
              "event_type": "view", "timestamp": now - 1000,
              "properties": {"product_id": champion.item}} for n in range(count)]
    auth = {"Authorization": f"Bearer {write_key}"}
    answers = [requests.post(f"{collector}/events", json=batch, headers=auth, timeout=30)
               .status_code for _ in range(2)]
    without_key = requests.post(f"{collector}/events", json=batch[:1], timeout=30).status_code
    lake = Lake(LAKE_URI, s3)

    def landed() -> list[str]:
        keys = lake.list(RAW_ZONE)
        ids = lake.read_tables(keys, columns=["event_id"], schema=RAW_EVENT_SCHEMA) \
            .column("event_id").to_pylist() if keys else []
        return [i for i in ids if i.startswith(prefix)]

    deadline = time.monotonic() + LAKE_SECONDS
    while len(set(ours := landed())) < count and time.monotonic() < deadline:
        time.sleep(3)
    time.sleep(5)  # a second copy, if a sink wrote one, lands about now
    ours = landed()
    return {"posted": count, "answers": answers, "without_key": without_key,
            "in_lake": len(ours), "distinct_in_lake": len(set(ours))}


def _serving_answers(url: str, token: str, champion) -> dict:
    path = f"{url}/recommend/{champion.known_user}?top_k=3"
    without = requests.get(path, timeout=30).status_code
    answer = requests.get(path, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    body = answer.json() if answer.ok else {}
    return {"with_token": answer.status_code, "without_token": without,
            "items": len(body.get("item_ids", [])), "model_version": body.get("model_version"),
            "fallback": body.get("fallback")}


def _metrics_need_the_token(published: dict, token: str) -> dict:
    """The scrapes infra/k8s/monitoring's PodMonitors make: the collector's /metrics, each
    stream worker's /metrics (port `metrics`), serving's /recsys/metrics (port `http`)."""
    endpoints = {"recsys-collector": f"{published[('recsys-collector', 'http')]}/metrics",
                 "recsys-mlserver-0": f"{published[('recsys-mlserver-0', 'http')]}"
                                      "/recsys/metrics"}
    endpoints.update({owner: f"{port}/metrics" for (owner, name), port in published.items()
                      if name == "metrics" and owner != "recsys-mlserver-0"})
    codes = {}
    for owner, where in sorted(endpoints.items()):
        url = f"http://127.0.0.1:{where}"
        codes[owner] = {
            "with_token": requests.get(url, headers={"Authorization": f"Bearer {token}"},
                                       timeout=30).status_code,
            "without_token": requests.get(url, timeout=30).status_code}
    return codes


def _mlflow_needs_a_login(url: str, admin_password: str) -> dict:
    path = f"{url}/api/2.0/mlflow/experiments/search?max_results=1"
    headers = {"Host": MLFLOW_HOST}
    return {"with_login": requests.get(path, headers=headers, auth=("admin", admin_password),
                                       timeout=30).status_code,
            "without_login": requests.get(path, headers=headers, timeout=30).status_code}
