"""Subcommands of the data path: generate, extract, validate, preprocess, run."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from recsys.components.extract.extract import ExtractConfig, extract
from recsys.components.preprocess.config import PreprocessConfig
from recsys.components.preprocess.preprocess import preprocess_window
from recsys.components.validate.rules import ValidationConfig
from recsys.components.validate.validate import validate_window
from recsys.core.data.event_store import parse_moment
from recsys.core.data.lake import Lake
from recsys.core.data.readers import SUPPORTED_FORMATS
from recsys.core.data.synthetic.config import DirtConfig, ShopConfig
from recsys.core.data.synthetic.generate import generate_shop, generate_shop_parts, write_shop
from recsys.core.data.synthetic.writers import FORMATS as GENERATE_FORMATS
from recsys.core.errors import ConfigError
from recsys.core.progress import progress, step
from recsys.core.settings import load_settings

WINDOW_HELP = "ISO date/datetime (UTC) or epoch milliseconds"


def register(commands: argparse._SubParsersAction) -> None:
    gen = commands.add_parser("generate", help="write a deterministic synthetic shop",
                              description="Generate a seeded synthetic shop: catalogue, users "
                              "with tastes, sessions with a view->cart->purchase funnel, "
                              "optional dirt.")
    gen.add_argument("--events", type=int, default=200_000, help="clean events (default 200000)")
    gen.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    gen.add_argument("--days", type=int, default=30, help="days the events span (default 30)")
    gen.add_argument("--end", default=None, help=f"period end, {WINDOW_HELP}; default today")
    gen.add_argument("--users", type=int, default=None, help="users (default events/20)")
    gen.add_argument("--items", type=int, default=None, help="catalogue size (default events/40)")
    gen.add_argument("--format", default="jsonl", choices=GENERATE_FORMATS,
                     help="output layout (default jsonl, the rich nested format)")
    gen.add_argument("--out", required=True, help="output file (jsonl, rees46) or folder")
    gen.add_argument("--part-events", type=int, default=None, metavar="N",
                     help="jsonl only: write the shop as parts of N events each into the "
                     "folder --out, one part in memory at a time (for shops too big for "
                     "memory; a different draw than in one piece)")
    for name in DirtConfig.model_fields:
        gen.add_argument(f"--dirt-{name.replace('_', '-')}", type=float, default=0.0,
                         help=f"share of {name.replace('_', ' ')} rows to inject (default 0)")
    gen.set_defaults(handler=cmd_generate)

    ext = commands.add_parser("extract", help="land a source window in the lake's raw zone",
                              description="Read a file, folder or s3:// source, keep events in "
                              "[start, end), write canonical Parquet partitioned by date; "
                              "idempotent by event_id; unreadable lines go to quarantine.")
    ext.add_argument("--source", required=True, help="file, folder or s3://bucket/key-or-prefix")
    ext.add_argument("--format", default=None, choices=SUPPORTED_FORMATS,
                     help="source layout (default: detected from the header)")
    _window_args(ext)
    lake_arg(ext)
    ext.set_defaults(handler=cmd_extract)

    val = commands.add_parser("validate", help="quality-check the raw zone into clean + quarantine",
                              description="Check required columns, types, event types, "
                              "timestamps, ids and null ratios; bad rows go to quarantine with a "
                              "reason; fails when the bad share exceeds --max-bad-ratio.")
    _window_args(val)
    lake_arg(val)
    val.add_argument("--max-bad-ratio", type=float, default=0.05,
                     help="fail above this share of bad rows (default 0.05)")
    val.add_argument("--report", default=None, help="also write the JSON report to this file")
    val.set_defaults(handler=cmd_validate)

    pre = commands.add_parser("preprocess", help="clean zone -> interactions, split, features",
                              description="De-duplicate, fill prices, weight interactions, "
                              "split by time, build user/item features and the sparse matrix "
                              "into lake processed/<snapshot>/.")
    _window_args(pre)
    lake_arg(pre)
    pre.add_argument("--holdout-days", type=float, default=7.0, help="holdout length (default 7)")
    pre.add_argument("--lookback-days", type=float, default=30.0,
                     help="training days before the holdout (default 30)")
    pre.set_defaults(handler=cmd_preprocess)


def _window_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", default=None, help=f"window start (inclusive), {WINDOW_HELP}")
    parser.add_argument("--end", default=None, help=f"window end (exclusive), {WINDOW_HELP}")


def lake_arg(parser: argparse.ArgumentParser) -> None:
    """The `--lake` option every lake command takes."""
    parser.add_argument("--lake", default=None,
                        help="lake folder or s3://bucket/prefix (default RECSYS_LAKE_URI or "
                             "<state dir>/lake)")


def open_lake(uri: str | None) -> Lake:
    settings = load_settings()
    return Lake(uri or settings.lake, settings.s3_endpoint_url)


def cmd_generate(args: argparse.Namespace) -> int:
    dirt = DirtConfig(**{n: getattr(args, f"dirt_{n}") for n in DirtConfig.model_fields})
    config = ShopConfig(events=args.events, seed=args.seed, days=args.days,
                        end=parse_moment(args.end), users=args.users, items=args.items, dirt=dirt)
    with step("generate", events=args.events, format=args.format) as done:
        if args.part_events:
            if args.format != "jsonl":
                raise ConfigError("--part-events writes JSON Lines parts: use --format jsonl")
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            rows, paths = 0, []
            parts = generate_shop_parts(config, args.part_events)
            for number, shop in enumerate(progress(parts, desc="parts")):
                paths += write_shop(shop, "jsonl", out / f"part-{number:05d}.jsonl", config)
                rows += len(shop.events)
        else:
            shop = generate_shop(config)
            paths = write_shop(shop, args.format, Path(args.out), config)
            rows = len(shop.events)
        done["rows"] = rows
    print(json.dumps({"events": rows, "files": [str(p) for p in paths]}, indent=2))
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    lake = open_lake(args.lake)
    config = ExtractConfig(source=args.source, format=args.format,
                           start=parse_moment(args.start), end=parse_moment(args.end))
    with step("extract", source=args.source, lake=lake.uri):
        report, _ = extract(config, lake, load_settings().s3_endpoint_url)
    print(report.model_dump_json(indent=2))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    lake = open_lake(args.lake)
    config = ValidationConfig(max_bad_ratio=args.max_bad_ratio)
    with step("validate", lake=lake.uri):
        result = validate_window(lake, config, parse_moment(args.start), parse_moment(args.end))
    text = result.report.model_dump_json(indent=2)
    if args.report:
        Path(args.report).write_text(text)
    print(text)
    return 0


def cmd_preprocess(args: argparse.Namespace) -> int:
    lake = open_lake(args.lake)
    config = PreprocessConfig(holdout_days=args.holdout_days, lookback_days=args.lookback_days)
    with step("preprocess", lake=lake.uri):
        key, processed = preprocess_window(lake, config, parse_moment(args.start),
                                           parse_moment(args.end))
    print(json.dumps({"snapshot": lake.url(key), **processed.summary}, indent=2, default=str))
    return 0
