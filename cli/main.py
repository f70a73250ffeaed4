"""`recsys`: one thin command line over the project's functions."""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from recsys.core.errors import RecsysError
from recsys.core.progress import configure_logging

log = logging.getLogger("recsys")


COMMAND_MODULES = {
    "run": "run_command", "generate": "data_commands", "extract": "data_commands",
    "validate": "data_commands", "preprocess": "data_commands",
    "pipeline": "pipeline_commands", "registry": "registry_commands",
    "catalog": "catalog_commands", "monitor": "monitor_commands",
    "stream": "stream_commands", "experiment": "experiment_commands", "bench": "bench",
    "quarantine": "lake_commands", "lake": "lake_commands",
}
"""Each command and the `recsys.cli` module that defines it, in the order of `--help`. A
command imports only its own module: `recsys stream processor` starts without loading
Evidently, kfp or MLflow (seconds a start, paid again by every restart of a worker)."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or only of `command` when it is one."""
    parser = argparse.ArgumentParser(
        prog="recsys",
        description="E-commerce recommendations: data lake steps, training pipeline, "
                    "registry, serving and monitoring. State lives under RECSYS_STATE_DIR "
                    "(default .recsys/); every location can be overridden by RECSYS_* "
                    "environment variables.",
    )
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = [COMMAND_MODULES[command]] if command in COMMAND_MODULES else \
        list(dict.fromkeys(COMMAND_MODULES.values()))
    for name in modules:
        importlib.import_module(f"recsys.cli.{name}").register(commands)
    return parser


def command_of(argv: list[str]) -> str | None:
    """The command an argument list names (its first positional), or None."""
    arguments = iter(argv)
    for argument in arguments:
        if argument == "--log-level":
            next(arguments, None)
        elif not argument.startswith("-"):
            return argument
    return None


def main(argv: list[str] | None = None) -> int:
    # progress bars for every tiny artifact download drown the CLI's own output
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(command_of(argv))
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        return int(args.handler(args) or 0)
    except RecsysError as exc:
        log.error("%s: %s", type(exc).__name__, exc.message)
        return 2


if __name__ == "__main__":
    sys.exit(main())
