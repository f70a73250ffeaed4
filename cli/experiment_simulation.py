"""`recsys experiment simulate`: a whole online experiment on the embedded default.

After `make run` (a champion and a lake): register a second candidate when the registry
has no challenger besides the champion, or, with a session model named, the champion's
long-term model with that session model (`experiment_challenger.py`); start the
experiment, start the collector (with its processor and lake sink) and the MLServer service
as their own processes, play the generated shop's users and anonymous visitors against them
(`recsys.experiments.simulator`) for the simulated days, stop both (the service writes its
last exposures, the sink its last events), wait until every accepted event is in the lake,
then conclude: analysis, report and, on a win by a registry version, promotion. The result
names each model arm's session scorer.
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

from recsys.cli.experiment_challenger import challenger_version, session_scorers
from recsys.core.errors import ConfigError, RecsysError

log = logging.getLogger(__name__)
REPOSITORY = Path(__file__).resolve().parents[1] / "serving" / "model_repository"


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


def session_model_params(text: str | None) -> dict:
    """`--session-model-params`: a JSON object of the session model's parameters."""
    if not text:
        return {}
    try:
        params = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"--session-model-params must be a JSON object: {exc}") from exc
    if not isinstance(params, dict):
        raise ConfigError(f"--session-model-params must be a JSON object, got {text!r}")
    return params


def live_items_reader(settings):
    """Visitor id -> the items of their live session in the online store the service reads
    (empty when it has none or the store cannot be read)."""
    from recsys.feature_repo.features.session_reader import SessionReader
    from recsys.feature_repo.features.store import open_store

    store, _ = open_store(settings)
    reader = SessionReader(store)

    def live_items(visitor_id: str) -> list[str]:
        try:
            session = reader.read(visitor_id)
        except Exception as exc:  # a locked or missing store: wait and ask again
            log.debug("live session of %s unreadable: %s", visitor_id, exc)
            return []
        return [] if session is None else session.recent_items

    return live_items


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

    if not 0 <= args.visitor_share <= 1:
        raise ConfigError(f"--visitor-share must be from 0 to 1, got {args.visitor_share}")
    challenger = challenger_version(settings, args.session_model,
                                    session_model_params(args.session_model_params))
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
    scorers = session_scorers(settings, {v.label: v.version for v in definition.variants
                                         if v.version})
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
                               event_prefix=f"sim-{args.name}",
                               visitor_share=args.visitor_share,
                               live_items=live_items_reader(settings))
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
              "observed": traffic.per_variant, "session_scorers": scorers,
              "visitors": traffic.visitors,
              "visitors_without_session": traffic.visitors_without_session}
    (Path(args.out) / "simulation.json").write_text(json.dumps(result, indent=2))
    return result
