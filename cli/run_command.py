"""`recsys run`: the main job end to end on the embedded default."""
from __future__ import annotations

import argparse
from pathlib import Path

from recsys.cli.pipeline_commands import add_run_arguments, exit_status, run_pipeline
from recsys.core.data.synthetic.config import DirtConfig, ShopConfig
from recsys.core.data.synthetic.generate import generate_shop, write_shop
from recsys.core.progress import step
from recsys.core.settings import load_settings

# A little realistic dirt so the quarantine path is exercised on every run.
SAMPLE_DIRT = DirtConfig(duplicates=0.01, missing_price=0.01, malformed=0.0005,
                         unknown_event_type=0.001, future_timestamp=0.0005)


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="generate a sample shop (or use --source) and run the "
                              "training pipeline locally: extract -> validate -> preprocess -> "
                              "train -> evaluate -> gate")
    run.add_argument("--events", type=int, default=200_000,
                     help="events of the generated sample shop (default 200000)")
    run.add_argument("--seed", type=int, default=42, help="sample shop seed (default 42)")
    run.add_argument("--source", default=None, help="your own events instead of the sample")
    add_run_arguments(run)
    run.set_defaults(handler=cmd_run)


def sample_source(state_dir: Path, events: int, seed: int) -> Path:
    """The sample shop file, generated once per (events, seed) and kept."""
    path = state_dir / "sample" / f"shop-{events}-seed{seed}.jsonl"
    if not path.exists():
        config = ShopConfig(events=events, seed=seed, dirt=SAMPLE_DIRT)
        with step("generate", events=events, seed=seed, out=path):
            write_shop(generate_shop(config), "jsonl", path, config)
    return path


def cmd_run(args: argparse.Namespace) -> int:
    settings = load_settings()
    source = args.source or str(sample_source(settings.state_dir, args.events, args.seed))
    text, result = run_pipeline(settings, source, args)
    print(text)
    return exit_status(result, args.strict_exit)
