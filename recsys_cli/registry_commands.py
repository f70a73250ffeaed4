"""`recsys registry show|rollback|promote`: the MLflow registry as the gate left it."""
from __future__ import annotations

import argparse
import json

from mlflow import MlflowClient

from components.common.settings import load_settings
from components.gate.registry import aliases, promote_manually, registry_table, rollback


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
    parser.set_defaults(handler=cmd_registry)


def cmd_registry(args: argparse.Namespace) -> int:
    settings = load_settings()
    name = args.model or settings.registered_model_name
    client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    if args.action == "rollback":
        print(f"champion of {name} is now version {rollback(client, name, args.reason)}")
    elif args.action == "promote":
        promote_manually(client, name, args.version, args.reason)
        print(f"champion of {name} is now version {args.version} (manual)")
    print(json.dumps({"model": name, "aliases": aliases(client, name),
                      "versions": registry_table(client, name)}, indent=2))
    return 0
