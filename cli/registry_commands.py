"""`recsys registry show|rollback|promote|export|migrate`: the MLflow registry as the gate
left it, and the operator's moves on it."""
from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from recsys.core.errors import ConfigError, NotFoundError
from recsys.core.lifecycle.registry import aliases, promote_manually, registry_table, rollback
from recsys.core.lifecycle.registry_lock import registry_lock
from recsys.core.lifecycle.tracking import client_for
from recsys.core.settings import load_settings

if TYPE_CHECKING:
    from recsys.core.lifecycle.mlflow_identities import Identity, Role


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("registry", help="show or move the registry's champion")
    parser.add_argument("--model", default=None,
                        help="registered model name (default RECSYS_REGISTERED_MODEL_NAME)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("show", help="versions, aliases, key metrics and gate decisions")
    back = actions.add_parser("rollback", help="champion <- previous, recorded")
    back.add_argument("--reason", required=True, help="why (stored on the version)")
    promote = actions.add_parser("promote", help="manual override: VERSION becomes champion")
    promote.add_argument("version", help="model version number")
    promote.add_argument("--reason", required=True, help="why (stored on the version)")
    export = actions.add_parser("export", help="write the champion as a data-only model folder "
                                "and print its SHA-256 (--out: for the seldon-core v1 image, "
                                "which has no MLflow: give it RECSYS_MODEL_PATH and "
                                "RECSYS_MODEL_SHA256), or as a Seldon v2 / KServe artifact")
    where = export.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="output folder (the model's files only)")
    where.add_argument("--artifact", metavar="URI", help="a folder or s3://bucket/prefix: the "
                       "model plus its MLServer model-settings.json, pinned to this version "
                       "and digest (the storageUri of a Seldon Model or KServe service)")
    export.add_argument("--alias", default="champion", help="alias to export (default champion)")
    identities = actions.add_parser(
        "identities", help="as MLflow's admin (MLFLOW_TRACKING_USERNAME/PASSWORD), create the "
        "basic-auth users, the model and the experiments, and grant each identity exactly its "
        "role (writer: MANAGE; reader: READ; monitor: READ, plus EDIT on version tags and on "
        "its drift runs)")
    identities.add_argument("--writer", action="append", default=[], metavar="USER=FILE",
                            help="an identity that may register and promote (the pipeline); "
                                 "FILE holds its password")
    identities.add_argument("--reader", action="append", default=[], metavar="USER=FILE",
                            help="a read-only identity (serving); FILE holds its password")
    identities.add_argument("--monitor", action="append", default=[], metavar="USER=FILE",
                            help="the monitoring identity: reads, logs its drift runs and tags "
                                 "the champion's version with their outcome; FILE holds its "
                                 "password")
    migrate = actions.add_parser(
        "migrate", help="one-shot: convert versions registered before 0.2 (pickles) to "
        "data-only versions and move their aliases (read with a model-only unpickler)")
    migrate.add_argument("--dry-run", action="store_true",
                         help="list the versions that would be converted; change nothing")
    parser.set_defaults(handler=cmd_registry)


def cmd_registry(args: argparse.Namespace) -> int:
    settings = load_settings()
    name = args.model or settings.registered_model_name
    client = client_for(settings.tracking_uri)
    if args.action == "export":
        from recsys.core.lifecycle.pyfunc import load_recommender
        from recsys.core.models.storage import save_model

        version = aliases(client, name).get(args.alias)
        if version is None:
            raise NotFoundError(f"{name} has no alias {args.alias!r}")
        model = load_recommender(f"models:/{name}/{version}")
        if args.artifact:
            from recsys.serving.artifact import write_artifact

            written = write_artifact(model, args.artifact, "recsys", version,
                                     settings.s3_endpoint_url)
            print(json.dumps({"model": name, "alias": args.alias, **written}))
            return 0
        sha256 = save_model(model, args.out)
        print(json.dumps({"model": name, "alias": args.alias, "version": version,
                          "path": args.out, "sha256": sha256}))
        return 0
    if args.action == "identities":
        return _identities(settings, name, args)
    if args.action == "migrate":
        return _migrate(client, settings, name, args.dry_run)
    if args.action == "rollback":
        target = rollback(client, name, args.reason, lock=registry_lock(
            settings.tracking_uri, name, settings.registry_lock_url))
        print(f"champion of {name} is now version {target}")
    elif args.action == "promote":
        from recsys.core.lifecycle.pyfunc import verify_version

        promote_manually(client, name, args.version, args.reason, lock=registry_lock(
            settings.tracking_uri, name, settings.registry_lock_url),
            verify=lambda version: verify_version(name, version))
        print(f"champion of {name} is now version {args.version} (manual)")
    print(json.dumps({"model": name, "aliases": aliases(client, name),
                      "versions": registry_table(client, name)}, indent=2))
    return 0


def _migrate(client, settings, name: str, dry_run: bool) -> int:
    from recsys.core.lifecycle.registry_migration import legacy_versions, migrate_registry

    if dry_run:
        print(json.dumps({"model": name, "legacy_versions": legacy_versions(client, name),
                          "aliases": aliases(client, name)}, indent=2))
        return 0
    report = migrate_registry(client, settings.tracking_uri, name, lock=registry_lock(
        settings.tracking_uri, name, settings.registry_lock_url))
    print(json.dumps({"model": name, "migrated": report.migrated,
                      "moved_aliases": report.moved_aliases, "failed": report.failed},
                     indent=2))
    return 1 if report.failed else 0


TRAINING_EXPERIMENT = "recsys-training"
"""The training pipeline's default `experiment` parameter."""


def _identities(settings, name: str, args: argparse.Namespace) -> int:
    from recsys.core.lifecycle.mlflow_identities import Experiments, provision_identities
    from recsys.experiments.store import TRACKING_EXPERIMENT
    from recsys.monitoring.monitor import EXPERIMENT as MONITORING_EXPERIMENT

    by_role: tuple[tuple[Role, list[str]], ...] = (
        ("writer", args.writer), ("reader", args.reader), ("monitor", args.monitor))
    wanted = [_identity(spec, role) for role, specs in by_role for spec in specs]
    if not wanted:
        raise ConfigError("name at least one --writer, --reader or --monitor "
                          "USER=PASSWORD_FILE")
    experiments = Experiments(writer=(TRAINING_EXPERIMENT, TRACKING_EXPERIMENT),
                              monitor=(MONITORING_EXPERIMENT,))
    print(json.dumps({"model": name, "granted": provision_identities(
        settings.tracking_uri, name, wanted, experiments)}, indent=2))
    return 0


def _identity(spec: str, role: Role) -> Identity:
    """USER=PASSWORD_FILE -> Identity (the password is read from the file, never an argument)."""
    from pathlib import Path

    from recsys.core.lifecycle.mlflow_identities import Identity

    user, separator, path = spec.partition("=")
    if not separator or not user or not path:
        raise ConfigError(f"expected USER=PASSWORD_FILE, got {spec!r}")
    password = Path(path).read_text().strip()
    if not password:
        raise ConfigError(f"password file {path} for {user} is empty")
    return Identity(user, password, role)
