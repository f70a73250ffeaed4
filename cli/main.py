"""`recsys`: one thin command line over the project's functions."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from recsys.cli import (
    bench,
    catalog_commands,
    data_commands,
    experiment_commands,
    monitor_commands,
    pipeline_commands,
    registry_commands,
    run_command,
    stream_commands,
)
from recsys.core.errors import RecsysError
from recsys.core.progress import configure_logging

log = logging.getLogger("recsys")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recsys",
        description="E-commerce recommendations: data lake steps, training pipeline, "
                    "registry, serving and monitoring. State lives under RECSYS_STATE_DIR "
                    "(default .recsys/); every location can be overridden by RECSYS_* "
                    "environment variables.",
    )
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO (default), WARNING")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run_command.register(commands)
    data_commands.register(commands)
    pipeline_commands.register(commands)
    registry_commands.register(commands)
    catalog_commands.register(commands)
    monitor_commands.register(commands)
    stream_commands.register(commands)
    experiment_commands.register(commands)
    bench.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    # progress bars for every tiny artifact download drown the CLI's own output
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        return int(args.handler(args) or 0)
    except RecsysError as exc:
        log.error("%s: %s", type(exc).__name__, exc.message)
        return 2


if __name__ == "__main__":
    sys.exit(main())
