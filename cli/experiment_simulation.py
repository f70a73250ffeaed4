"""`recsys experiment simulate`: a whole online experiment on the embedded default.

After `make run` (a champion and a lake): register a second candidate when the registry
has no challenger besides the champion, start the experiment, start the collector (with
its processor and lake sink) and the MLServer service as their own processes, play the
generated shop's users against them (`recsys.experiments.simulator`) for the simulated
days, stop both (the service writes its last exposures, the sink its last events), wait
until every accepted event is in the lake, then conclude: analysis, report and, on a win
by a registry version, promotion.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from recsys.core.errors import RecsysError
from recsys.core.progress import step

log = logging.getLogger(__name__)
REPOSITORY = Path(__file__).resolve().parents[1] / "serving" / "model_repository"


def challenger_version(settings) -> str:
    """The `challenger` alias when it names another version than the champion; otherwise
    a second candidate trained now on the lake's clean events and registered as
    challenger (item-kNN, or EASE when the champion is item-kNN)."""
    from recsys.components.preprocess.config import PreprocessConfig
    from recsys.components.preprocess.preprocess import preprocess_window
    from recsys.components.train.train import TrainConfig, log_trained, train_models
    from recsys.core.data.lake import Lake
    from recsys.core.lifecycle.registry import aliases, register_candidate
    from recsys.core.lifecycle.tracking import client_for

    client = client_for(settings.tracking_uri)
    name = settings.registered_model_name
    current = aliases(client, name)
    if "champion" not in current:
        raise RecsysError(f"{name} has no champion: run `make run` first")
    if current.get("challenger") not in (None, current["champion"]):
        return current["challenger"]
    champion_run_id = client.get_model_version(name, current["champion"]).run_id
    if champion_run_id is None:
        raise RecsysError(f"{name}'s champion v{current['champion']} records no training run")
    champion_run = client.get_run(champion_run_id)
    model = "ease" if champion_run.data.tags.get("recsys.model") == "item_knn" else "item_knn"
    with step("train a challenger for the experiment", model=model):
        _, processed = preprocess_window(Lake(settings.lake, settings.s3_endpoint_url),
                                         PreprocessConfig())
        trained = train_models(processed.train, TrainConfig(models={model: {}}),
                               processed.item_features, processed.user_features)[0]
        log_trained(trained, settings.tracking_uri, f"{name}-experiments",
                    {"rows": len(processed.train)})
        run_id, model_uri = trained.logged_run()
        return register_candidate(client, name, model_uri, run_id)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, seconds: float, headers=None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            command = process.args if isinstance(process.args, list) else [process.args]
            raise RecsysError(f"{command[3:5]} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2, headers=headers).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RecsysError(f"{url} did not answer within {seconds:.0f} s")


def start_stream(env: dict, port: int, allow_volatile: bool, logs: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "recsys.cli.main", "stream", "up", "--port", str(port)]
    if allow_volatile:
        command.append("--allow-volatile-bus")
    process = subprocess.Popen(command, env=env, stdout=open(logs / "stream.log", "w"),
                               stderr=subprocess.STDOUT)
    wait_for(f"http://127.0.0.1:{port}/health", process, 120)
    return process


def start_service(env: dict, folder: Path, logs: Path) -> tuple[subprocess.Popen, str]:
    repository = folder / "models"
    shutil.copytree(REPOSITORY, repository)
    port = free_port()
    (repository / "settings.json").write_text(json.dumps({
        "debug": False, "parallel_workers": 0, "http_port": port, "grpc_port": free_port(),
        "metrics_port": free_port()}))
    model_settings = repository / "recsys" / "model-settings.json"
    settings = json.loads(model_settings.read_text())
    settings["parameters"]["extra"].update({"log_flush_seconds": 2, "cache_ttl_seconds": 0})
    model_settings.write_text(json.dumps(settings))
    process = subprocess.Popen([sys.executable, "-m", "recsys.serving.server", "start",
                                str(repository)], env=env,
                               stdout=open(logs / "service.log", "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/v2/models/recsys/ready", process, 180)
    return process, url


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=90)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_events_in_lake(lake, event_prefix: str, expected: int, seconds: float) -> int:
    """Simulated events found in the raw zone (their ids start with `event_prefix`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from recsys.core.data.event_store import RAW_ZONE

    deadline = time.monotonic() + seconds
    found = 0
    while time.monotonic() < deadline:
        keys = lake.list(RAW_ZONE)
        table = lake.read_tables(keys, schema=pa.schema([("event_id", pa.string())]))
        found = int(pc.sum(pc.starts_with(table["event_id"], event_prefix)).as_py() or 0)
        if found >= expected:
            break
        time.sleep(1)
    return found


def simulate(args, settings) -> dict:
    from recsys.core.data.lake import Lake
    from recsys.core.data.synthetic.config import ShopConfig
    from recsys.core.lifecycle.registry_lock import registry_lock
    from recsys.experiments.definition import (
        ExperimentDefinition,
        parse_guardrails,
        parse_variants,
    )
    from recsys.experiments.evaluate import conclude
    from recsys.experiments.simulator import Endpoints, audience_of, play
    from recsys.experiments.store import lock_name, open_store

    challenger = challenger_version(settings)
    store = open_store(settings.tracking_uri, settings.registered_model_name)
    surface_lock = registry_lock(settings.tracking_uri, lock_name("recommend"),
                                 settings.registry_lock_url)
    alias_lock = registry_lock(settings.tracking_uri, settings.registered_model_name,
                               settings.registry_lock_url)
    extra = {"guardrails": parse_guardrails(args.guardrail)} if args.guardrail else {}
    definition = store.start(ExperimentDefinition(
        name=args.name, variants=parse_variants(args.variants),
        minimum_users=args.minimum_users, **extra), surface_lock, "simulation")
    log.info("experiment %s started: challenger v%s, variants %s", args.name, challenger,
             {v.label: f"{v.target} (v{v.version})" for v in definition.variants})
    token, write_key = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    env = {**os.environ, "RECSYS_STATE_DIR": str(settings.state_dir),
           "RECSYS_SERVING_TOKEN": token, "RECSYS_COLLECTOR_WRITE_KEYS": write_key,
           "RECSYS_COLLECTOR_RATE_PER_SECOND": "1000000",
           "RECSYS_COLLECTOR_CLIENT_RATE_PER_SECOND": "1000000", "RECSYS_NO_PROGRESS": "1"}
    lake = Lake(settings.lake, settings.s3_endpoint_url)
    with tempfile.TemporaryDirectory(prefix="recsys-experiment-") as folder:
        logs = Path(args.out)
        logs.mkdir(parents=True, exist_ok=True)
        stream_port = free_port()
        stream = start_stream(env, stream_port, args.allow_volatile_bus, logs)
        try:
            service, url = start_service(env, Path(folder), logs)
            try:
                audience = audience_of(ShopConfig(events=args.events, seed=args.seed))
                traffic = play(audience, Endpoints(url, token,
                                                   f"http://127.0.0.1:{stream_port}/events",
                                                   write_key),
                               args.days, args.requests_per_day, seed=args.seed,
                               event_prefix=f"sim-{args.name}")
            finally:
                stop(service)
        finally:
            stop(stream)
    found = wait_for_events_in_lake(lake, f"sim-{args.name}-", traffic.events_sent, 120)
    outcome = conclude(store, lake, args.name, args.out, surface_lock, alias_lock,
                       "simulation")
    expected = traffic.expected_ctr()
    truly_best = max((label for label in expected if label != "none"),
                     key=lambda label: expected[label])
    result = {**outcome, "requests": traffic.requests,
              "failed_requests": traffic.failed_requests, "events_sent": traffic.events_sent,
              "events_refused": traffic.events_refused, "events_in_lake": found,
              "expected_ctr": expected, "truly_best_variant": truly_best,
              "observed": traffic.per_variant}
    (Path(args.out) / "simulation.json").write_text(json.dumps(result, indent=2))
    return result
