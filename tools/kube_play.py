"""`make kube-play`: the dev overlay's manifests run in containers by `podman kube play`,
checked end to end from the host, then torn down (also on failure and Ctrl-C).

What runs (tools/kube_translate.py says what is translated and what is not checked): the
event bus's Redis and MLflow first (the pods the Services other pods address select), then
the collector, the processors, the lake and quarantine sinks and one pod of the Seldon
Server, each with its ConfigMaps, Secrets (local values), volumes, probes and security
context. The managed services the manifests expect are the host's: PostgreSQL (MLflow's
backend and user store, Feast's registry; pods reach it through a forwarder on the podman
network's gateway) and an S3 endpoint (moto's server on the gateway: the lake, MLflow's
artifacts, the models). The online store is the bus's Redis (db 1).

The check: a champion trained on the host is exported to the Model's storageUri and served
(the Server pod answers `/recommend` with its token, 401 without); events posted to the
collector with its write key (twice: a client's retry) land in the lake's raw zone once;
every metrics endpoint answers the metrics token and refuses a request without it.

    python -m recsys.tools.kube_play [--overlay dev] [--events 40] [--report FILE]
"""
from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from pathlib import Path

import yaml

from recsys.tools.kube_translate import (
    Translation,
    model_storage_uri,
    translate,
    with_env,
    with_host_aliases,
)
from recsys.tools.kustomize import render
from recsys.tools.local_services import free_port, temporary_postgres_database

log = logging.getLogger("kube_play")
REPO = Path(__file__).resolve().parents[1]
SERVING_IMAGE = "localhost/recsys-serving:0.2.0"
PROJECT_IMAGE = "localhost/recsys:0.2.0"
STREAM_IMAGE = "localhost/recsys-stream:0.2.0"
BASE_IMAGE = "localhost/debian:bookworm"
REDIS_IMAGE = "localhost/recsys-kube-play-redis:7.0"
REDIS_CONTAINERFILE = f"""FROM {BASE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends redis-server \\
 && rm -rf /var/lib/apt/lists/* && mkdir -p /data && chown 999:999 /data
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /data
ENTRYPOINT ["redis-server"]
"""
"""docker.io/library/redis:7.0 is not pulled here: bookworm's redis-server 7.0 on the local
base image, started as the official image starts a `.conf` argument."""
IMAGES = {"ghcr.io/recsys-mlops/recsys-serving:0.2.0": SERVING_IMAGE,
          "docker.io/library/redis:7.0": REDIS_IMAGE}
BUCKETS = ("recsys-lake", "recsys-mlflow-artifacts", "recsys-models")
S3_KEY = "recsys-local"
READY_SECONDS = 300.0


class KubePlayFailed(RuntimeError):
    """The manifests did not run, or the system did not answer as it should."""


def podman(*args: str, check: bool = True, timeout: float = 600,
           stdin: str | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                          input=stdin)
    if check and done.returncode != 0:
        raise KubePlayFailed(f"podman {' '.join(args[:3])}: {done.stderr.strip()[-2000:]}")
    return done


def run(overlay: str = "dev", events: int = 40) -> dict:
    """Play the overlay, check it, tear it all down; returns the report (raises
    KubePlayFailed with the report so far when a check fails)."""
    started = time.monotonic()
    report: dict = {"overlay": overlay}
    run_id = uuid.uuid4().hex[:6]
    with ExitStack() as stack:
        work = Path(tempfile.mkdtemp(prefix=f"recsys-kube-play-{run_id}-"))
        stack.callback(_remove_tree, work)
        for image in (PROJECT_IMAGE, STREAM_IMAGE, SERVING_IMAGE):
            if podman("image", "exists", image, check=False).returncode != 0:
                raise KubePlayFailed(f"{image} is missing: run `make image` first")
        _ensure_redis_image()
        network, gateway, subnet = stack.enter_context(
            podman_network(f"recsys-kube-play-{run_id}"))
        s3_port = stack.enter_context(_s3_endpoint())
        s3, pods_s3 = f"http://127.0.0.1:{s3_port}", f"http://{gateway}:{s3_port}"
        databases = {name: stack.enter_context(temporary_postgres_database(f"kube_play_{name}"))
                     for name in ("feast", "mlflow", "mlflow_auth")}
        postgres_port = free_port()
        from recsys.tools.tcp_forward import tcp_forward

        stack.enter_context(tcp_forward("0.0.0.0", postgres_port, "127.0.0.1", 5432, subnet))
        pod_databases = {name: _through(url, gateway, postgres_port)
                         for name, url in databases.items()}
        resources = render(REPO / "infra" / "k8s" / "overlays" / overlay)
        storage_uri = model_storage_uri(resources)
        translation = translate(resources, IMAGES, str(work / "model"), str(work / "secrets"),
                                host_ports())
        report["translated"], report["not_checked"] = translation.translated, \
            translation.not_checked
        values = local_secrets(pod_databases)
        _write_secrets(stack, translation, values, work / "secrets")
        for name, data in translation.mounted_config_maps.items():
            _write_folder(work / "secrets" / f"configmap-{name}", data)
        s3_env = {"RECSYS_S3_ENDPOINT_URL": pods_s3, "AWS_ENDPOINT_URL": pods_s3,
                  "MLFLOW_S3_ENDPOINT_URL": pods_s3, "AWS_DEFAULT_REGION": "us-east-1"}
        played = _Played(stack, work, network)
        backends = played.play("backends", translation.config_maps,
                               [with_env(w, s3_env, when="AWS_ACCESS_KEY_ID")
                                for w in translation.backends])
        report["pods"] = played.wait_ready(backends)
        aliases = {address: played.ip_of(selector)
                   for address, selector in translation.service_targets.items()}
        bus_port = translation.published[("recsys-redis-bus-0", "redis")]
        champion = _champion(work, s3, databases["feast"], bus_port, storage_uri)
        report["champion"] = {"version": champion.version, "storage_uri": storage_uri}
        from recsys.tools.kube_play_champion import copy_artifact

        copy_artifact(storage_uri, s3, work / "model")
        workloads = played.play("workloads", translation.config_maps, [
            with_host_aliases(with_env(w, s3_env, when="AWS_ACCESS_KEY_ID"), aliases)
            for w in translation.workloads])
        report["pods"].update(played.wait_ready(workloads))
        from recsys.tools.kube_play_checks import check_system

        report.update(check_system(translation, values, champion, s3, events))
    report["seconds"] = round(time.monotonic() - started, 1)
    return report


def host_ports() -> Callable[[], int]:
    """Free ports on 127.0.0.1 below the ephemeral range (32768-60999 here): a port taken
    there can be any outgoing connection's by the time its pod starts."""
    import random
    import socket

    candidates = iter(range(random.randrange(20000, 30000, 100), 32768))

    def next_port() -> int:
        for port in candidates:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
        raise KubePlayFailed("no free port below 32768")

    return next_port


def local_secrets(databases: dict[str, str]) -> dict[str, dict[str, str]]:
    """The operator-created Secrets (docs/deployment.md), with values for this machine."""
    auth_config = (REPO / "infra" / "mlflow" / "basic_auth.ini").read_text()
    auth_lines = [_same_scheme(line, databases["mlflow_auth"])
                  if line.startswith("database_uri") else line
                  for line in auth_config.splitlines()]
    return {
        "recsys-redis": {"url": "redis://recsys-redis-bus.recsys.svc:6379/1"},
        "recsys-feast-registry": {"url": databases["feast"]},
        "recsys-s3": {"access_key_id": S3_KEY, "secret_access_key": S3_KEY},
        "recsys-collector-write-keys": {"keys": secrets.token_urlsafe(24) + "\n"},
        "recsys-metrics-token": {"token": secrets.token_urlsafe(24) + "\n"},
        "recsys-mlflow-backend": {"url": databases["mlflow"]},
        "recsys-mlflow-admin": {"password": secrets.token_urlsafe(16),
                                "flask_secret_key": secrets.token_urlsafe(24)},
        "recsys-mlflow-auth-config": {"basic_auth.ini": "\n".join(auth_lines) + "\n"},
        "recsys-mlflow-serving": {"username": "recsys-serving",
                                  "password": secrets.token_urlsafe(16)},
        "recsys-serving-token": {"token": secrets.token_urlsafe(24) + "\n"},
    }


def _same_scheme(line: str, local_url: str) -> str:
    """basic_auth.ini's `database_uri` line pointing at `local_url`, with the shipped
    URL's scheme (its SQLAlchemy driver) kept."""
    shipped = line.split("=", 1)[1].strip()
    return f"database_uri = {shipped.split('://')[0]}://{local_url.split('://', 1)[1]}"


class _Played:
    """The YAML files given to `podman kube play`, each brought down when the run ends."""

    def __init__(self, stack: ExitStack, work: Path, network: str):
        self.stack, self.work, self.network = stack, work, network

    def play(self, name: str, config_maps: list[dict], workloads: list[dict]) -> list[dict]:
        path = self.work / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(config_maps + workloads, sort_keys=False))
        for claim in (w for w in workloads if w["kind"] == "PersistentVolumeClaim"):
            if podman("volume", "exists", claim["metadata"]["name"], check=False).returncode == 0:
                log.warning("removing volume %s, left by an earlier run",
                            claim["metadata"]["name"])
                podman("volume", "rm", "-f", claim["metadata"]["name"])
        self.stack.callback(self._down, path, workloads)
        log.info("podman kube play %s (%d documents)", path.name, len(config_maps + workloads))
        podman("kube", "play", "--network", self.network, str(path), timeout=900)
        return [w for w in workloads if w["kind"] in ("Pod", "Deployment")]

    def _down(self, path: Path, workloads: list[dict]) -> None:
        podman("kube", "down", str(path), check=False, timeout=300)
        for claim in (w for w in workloads if w["kind"] == "PersistentVolumeClaim"):
            podman("volume", "rm", "-f", claim["metadata"]["name"], check=False)

    def pod_name(self, workload: dict) -> str:
        """The podman pod of a workload: a Pod's name; `<name>-pod-0` for a Deployment."""
        name = workload["metadata"]["name"]
        return name if workload["kind"] == "Pod" else f"{name}-pod-0"

    def containers(self, workload: dict) -> list[str]:
        spec = workload["spec"] if workload["kind"] == "Pod" else \
            workload["spec"]["template"]["spec"]
        return [f"{self.pod_name(workload)}-{c['name']}" for c in spec["containers"]]

    def wait_ready(self, workloads: list[dict]) -> dict[str, str]:
        """Run every container's readiness probe (else its liveness probe, else the
        image's HEALTHCHECK) until it passes; raises with the container's log on timeout
        or exit."""
        from recsys.tools.kube_play_checks import probe_command

        deadline = time.monotonic() + READY_SECONDS
        states = {}
        for workload in workloads:
            spec = workload["spec"] if workload["kind"] == "Pod" else \
                workload["spec"]["template"]["spec"]
            for container, name in zip(spec["containers"], self.containers(workload)):
                command = probe_command(container, podman)
                while True:
                    state = podman("inspect", name, "--format", "{{.State.Status}}",
                                   check=False).stdout.strip()
                    if state not in ("running", "created", "configured"):
                        raise KubePlayFailed(f"{name} is {state or 'missing'}: "
                                             f"{_logs(name)}")
                    if command is None or podman("exec", name, *command, check=False,
                                                 timeout=30).returncode == 0:
                        break
                    if time.monotonic() > deadline:
                        raise KubePlayFailed(f"{name} not ready in {READY_SECONDS:.0f} s "
                                             f"({' '.join(command)}): {_logs(name)}")
                    time.sleep(2)
                states[name] = "ready"
                log.info("%s ready", name)
        return states

    def ip_of(self, selector: dict) -> str:
        """The IP (on this run's network) of a played pod whose labels match."""
        for line in podman("pod", "ps", "--format", "{{.Name}}").stdout.split():
            labels = json.loads(podman("pod", "inspect", line, "--format",
                                       "{{json .Labels}}").stdout or "{}") or {}
            if all(labels.get(k) == v for k, v in selector.items()):
                infra = podman("pod", "inspect", line, "--format",
                               "{{.InfraContainerID}}").stdout.strip()
                networks = json.loads(podman("inspect", infra, "--format",
                                             "{{json .NetworkSettings.Networks}}").stdout)
                return networks[self.network]["IPAddress"]
        raise KubePlayFailed(f"no pod with labels {selector}")


def _logs(container: str) -> str:
    done = podman("logs", "--tail", "40", container, check=False)
    return (done.stdout + done.stderr)[-3000:]


def _champion(work: Path, s3: str, feast_registry: str, bus_port: int, storage_uri: str):
    """Train, register and export on the host, seeing the deployment as the pods do."""
    from recsys.core.settings import Settings
    from recsys.tools.kube_play_champion import train_and_export

    os.environ.update({"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_KEY,
                       "AWS_DEFAULT_REGION": "us-east-1", "RECSYS_NO_PROGRESS": "1",
                       "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"})
    settings = Settings(state_dir=work / "host-state", lake_uri="s3://recsys-lake/shop",
                        s3_endpoint_url=s3, feast_profile="production",
                        feast_registry_url=feast_registry,
                        redis_url=f"redis://127.0.0.1:{bus_port}/1")
    return train_and_export(settings, storage_uri)


def _write_secrets(stack: ExitStack, translation: Translation, values: dict,
                   folder: Path) -> None:
    """Each Secret the workloads read, as the podman secret `kube play` resolves
    secretKeyRef with (a JSON map of base64 values) and as a folder of its keys (mounted
    Secrets: tools/kube_translate.py); refuses a key the manifests read and no value has."""
    for name, keys in sorted(translation.secrets.items()):
        if name not in values or not keys <= set(values[name]):
            raise KubePlayFailed(f"Secret {name}: the manifests read {sorted(keys)}, "
                                 f"local values have {sorted(values.get(name, {}))}")
        data = {k: base64.b64encode(v.encode()).decode() for k, v in values[name].items()}
        podman("secret", "rm", name, check=False)
        podman("secret", "create", name, "-", stdin=json.dumps(data))
        stack.callback(podman, "secret", "rm", name, check=False)
        _write_folder(folder / name, values[name])


def _write_folder(folder: Path, files: dict[str, str]) -> None:
    """A mounted Secret's or ConfigMap's keys as files any pod user reads (the kubelet's
    default mode 0644)."""
    folder.mkdir(parents=True, exist_ok=True)
    for key, value in files.items():
        (folder / key).write_text(value)
        (folder / key).chmod(0o644)
    for path in (folder, folder.parent):
        path.chmod(0o755)


def _ensure_redis_image() -> None:
    if podman("image", "exists", REDIS_IMAGE, check=False).returncode == 0:
        return
    if podman("image", "exists", BASE_IMAGE, check=False).returncode != 0:
        raise KubePlayFailed(f"{BASE_IMAGE} is missing: run `make base-image` first")
    log.info("building %s (bookworm's redis-server)", REDIS_IMAGE)
    with tempfile.TemporaryDirectory() as context:
        (Path(context) / "Containerfile").write_text(REDIS_CONTAINERFILE)
        podman("build", "--network", "host", "-t", REDIS_IMAGE, context, timeout=900)


@contextmanager
def podman_network(name: str):
    """A podman bridge network of this run; yields (name, gateway address, subnet)."""
    podman("network", "create", name)
    try:
        info = json.loads(podman("network", "inspect", name).stdout)[0]
        yield name, info["subnets"][0]["gateway"], info["subnets"][0]["subnet"]
    finally:
        podman("network", "rm", "-f", name, check=False)


@contextmanager
def _s3_endpoint():
    """moto's S3 server with the buckets the manifests name; yields its port. It listens on
    every address: the pods reach it at the network's gateway, whose bridge exists only
    once a pod joins the network."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="0.0.0.0", port=port, verbose=False)  # noqa: S104
    server.start()
    try:
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}",
                              aws_access_key_id=S3_KEY, aws_secret_access_key=S3_KEY,
                              region_name="us-east-1")
        for bucket in BUCKETS:
            client.create_bucket(Bucket=bucket)
        yield port
    finally:
        server.stop()


def _through(url: str, host: str, port: int) -> str:
    """A PostgreSQL URL of the host's loopback server, through the forwarder."""
    return url.replace("@127.0.0.1:5432/", f"@{host}:{port}/")


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _stop_on_signals() -> Callable[[], None]:
    """SIGTERM and SIGINT (also when SIGINT was ignored, as in a background job) raise
    KeyboardInterrupt, so the run tears down; returns what restores the handlers."""
    def stop(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    return lambda: [signal.signal(sig, handler) for sig, handler in previous.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys.tools.kube_play",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--overlay", default="dev", help="infra/k8s/overlays/<name>")
    parser.add_argument("--events", type=int, default=40, help="events posted to the collector")
    parser.add_argument("--report", default=None, help="also write the report (JSON) here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    restore = _stop_on_signals()
    try:
        report = run(args.overlay, args.events)
    except KubePlayFailed as exc:
        print(f"make kube-play failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("make kube-play interrupted: torn down", file=sys.stderr)
        return 130
    finally:
        restore()
    text = json.dumps(report, indent=2, sort_keys=True)
    print(text)
    if args.report:
        Path(args.report).write_text(text + "\n")
    return 0 if report.get("passed") else 1


if __name__ == "__main__":
    sys.exit(main())
