"""`make run-containers`: the training pipeline with every step in the project image, on the
production profile, on this machine.

It starts what it needs and stops it afterwards: podman's Docker-compatible API (for
kfp.local's DockerRunner), two databases on the local PostgreSQL (MLflow's backend and
Feast's SQL registry), an `mlflow server` on the first, and an S3 endpoint (moto's server)
holding the lake. The online store is the local Redis (db 13). Steps reach all of them over
the host network; S3 credentials reach them as environment, as a cluster's Secrets would.
`--compiled` runs the compiled IR YAML loaded back instead of the pipeline function
(tools/compiled_run.py).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from recsys.tools.local_services import (
    mlflow_server,
    podman_api,
    s3_endpoint,
    temporary_postgres_database,
)

log = logging.getLogger(__name__)
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "recsys-local", "AWS_SECRET_ACCESS_KEY": "recsys-local",
                  "AWS_DEFAULT_REGION": "us-east-1"}
MODEL = "recsys-recommender"
ONLINE_REDIS = "redis://127.0.0.1:6379/13"


@dataclass(frozen=True)
class ContainerServices:
    """The services a container run uses, started on this machine."""

    tracking_uri: str
    """The MLflow server's address."""
    source_uri: str
    """The source file, uploaded to the S3 endpoint's bucket."""


@contextmanager
def container_services(work: Path, source: Path,
                       registered_model: str = MODEL) -> Iterator[ContainerServices]:
    """Start the services, upload `source` to a fresh bucket and, while the context lasts,
    set this process's environment to the production profile on them (restored after):
    `recsys` settings, S3 credentials and DOCKER_HOST."""
    import boto3
    import redis

    os.environ.update(S3_CREDENTIALS)
    work.mkdir(parents=True, exist_ok=True)
    redis.Redis.from_url(ONLINE_REDIS).flushdb()
    with podman_api(str(work / "podman.sock")) as docker_host, \
            temporary_postgres_database("recsys_mlflow") as mlflow_db, \
            temporary_postgres_database("recsys_feast") as feast_db, \
            mlflow_server(mlflow_db, str(work / "mlartifacts"), _free_port()) as tracking, \
            s3_endpoint(_free_port()) as s3:
        bucket = f"recsys-lake-{uuid.uuid4().hex[:8]}"  # moto shares buckets in-process
        storage = boto3.client("s3", endpoint_url=s3)
        storage.create_bucket(Bucket=bucket)
        storage.upload_file(str(source), bucket, f"incoming/{source.name}")
        settings = {"DOCKER_HOST": docker_host, "RECSYS_STATE_DIR": str(work / "state"),
                    "RECSYS_LAKE_URI": f"s3://{bucket}/shop", "RECSYS_S3_ENDPOINT_URL": s3,
                    "RECSYS_MLFLOW_TRACKING_URI": tracking,
                    "RECSYS_REGISTERED_MODEL_NAME": registered_model,
                    "RECSYS_FEAST_PROFILE": "production", "RECSYS_REDIS_URL": ONLINE_REDIS,
                    "RECSYS_FEAST_REGISTRY_URL": feast_db,
                    "RECSYS_REGISTRY_LOCK_URL": mlflow_db, "RECSYS_NO_PROGRESS": "1"}
        saved = {name: os.environ.get(name) for name in settings}
        os.environ.update(settings)
        try:
            yield ContainerServices(tracking_uri=tracking,
                                    source_uri=f"s3://{bucket}/incoming/{source.name}")
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def run_outcome(tracking_uri: str, registered_model: str) -> dict:
    """The gate's latest decision and the registry's aliases."""
    from recsys.components.gate.report import latest_decision
    from recsys.core.lifecycle.registry import aliases
    from recsys.core.lifecycle.tracking import client_for

    return {"decision": latest_decision(tracking_uri, registered_model),
            "aliases": aliases(client_for(tracking_uri), registered_model)}


def run_in_containers(work: Path, source: Path, registered_model: str = MODEL,
                      models: list[str] | None = None) -> dict:
    """`recsys pipeline run --runner container` on `source` against services started here;
    returns the gate's decision and the registry's aliases."""
    from recsys.cli.main import main as recsys_main

    with container_services(work, source, registered_model) as services:
        command = ["pipeline", "run", "--runner", "container", "--no-cache",
                   "--source", services.source_uri]
        if models:
            command += ["--models", ",".join(models)]
        if recsys_main(command) != 0:
            raise RuntimeError("recsys pipeline run --runner container failed")
        return run_outcome(services.tracking_uri, registered_model)


def run_compiled_in_containers(work: Path, source: Path, registered_model: str = MODEL,
                               models: list[str] | None = None,
                               pipeline_yaml: Path | None = None) -> dict:
    """`pipeline_yaml` (default: the training pipeline compiled into `work`) loaded back
    and run on `source` as `run_in_containers` runs the pipeline function, with what
    kfp.local leaves out of it said in tools/compiled_run.py; returns the gate's decision
    and the registry's aliases."""
    from recsys.pipelines.local_runner import container_environment
    from recsys.pipelines.training_pipeline import compile_pipeline
    from recsys.tools.compiled_run import (
        compiled_run_arguments,
        load_compiled_pipeline,
        run_compiled_pipeline,
    )

    if pipeline_yaml is None:
        work.mkdir(parents=True, exist_ok=True)
        pipeline_yaml = Path(compile_pipeline(str(work / "training_pipeline.yaml")))
    pipeline = load_compiled_pipeline(pipeline_yaml)
    with container_services(work, source, registered_model) as services:
        run_compiled_pipeline(pipeline, work / "kfp", container_environment(),
                              compiled_run_arguments(services.source_uri, models))
        return run_outcome(services.tracking_uri, registered_model)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--compiled", action="store_true",
                        help="run the compiled IR YAML loaded back (what a cluster runs), not "
                        "the pipeline function (tools/compiled_run.py)")
    parser.add_argument("--pipeline-yaml", type=Path, default=None,
                        help="with --compiled: this YAML (e.g. build/training_pipeline.yaml "
                        "from `make compile`); default: compiled afresh for the run")
    args = parser.parse_args(argv)
    if args.pipeline_yaml and not args.compiled:
        parser.error("--pipeline-yaml goes with --compiled")
    from recsys.core.data.synthetic.config import ShopConfig
    from recsys.core.data.synthetic.generate import generate_shop, write_shop
    from recsys.core.progress import configure_logging

    configure_logging()
    with tempfile.TemporaryDirectory(prefix="recsys-containers-") as folder:
        work = Path(folder)
        config = ShopConfig(events=args.events, seed=args.seed)
        source = work / "shop.jsonl"
        write_shop(generate_shop(config), "jsonl", source, config)
        if args.compiled:
            outcome = run_compiled_in_containers(work, source, pipeline_yaml=args.pipeline_yaml)
        else:
            outcome = run_in_containers(work, source)
    print(json.dumps(outcome, indent=2, default=str))


if __name__ == "__main__":
    main()
