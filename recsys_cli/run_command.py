"""`recsys run`: the main job end to end on the embedded default."""
from __future__ import annotations

import argparse
from pathlib import Path

from components.common.lake import Lake
from components.common.progress import step
from components.common.settings import load_settings
from components.extract.extract import ExtractConfig, extract
from components.preprocess.config import PreprocessConfig
from components.preprocess.preprocess import preprocess_window
from components.synthetic.config import DirtConfig, ShopConfig
from components.synthetic.generate import generate_shop, write_shop
from components.validate.rules import ValidationConfig
from components.validate.validate import validate_window

# A little realistic dirt so the quarantine path is exercised on every run.
SAMPLE_DIRT = DirtConfig(duplicates=0.01, missing_price=0.01, malformed=0.0005,
                         unknown_event_type=0.001, future_timestamp=0.0005)


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="generate a sample shop (or use --source) and run "
                              "extract -> validate -> preprocess on the embedded default")
    run.add_argument("--events", type=int, default=200_000,
                     help="events of the generated sample shop (default 200000)")
    run.add_argument("--seed", type=int, default=42, help="sample shop seed (default 42)")
    run.add_argument("--source", default=None, help="your own events instead of the sample")
    run.add_argument("--format", default=None, help="layout of --source (default: detected)")
    run.set_defaults(handler=cmd_run)


def sample_source(state_dir: Path, events: int, seed: int) -> Path:
    """The sample shop file, generated once per (events, seed)."""
    path = state_dir / "sample" / f"shop-{events}-seed{seed}.jsonl"
    if not path.exists():
        config = ShopConfig(events=events, seed=seed, dirt=SAMPLE_DIRT)
        with step("generate", events=events, seed=seed, out=path):
            write_shop(generate_shop(config), "jsonl", path, config)
    return path


def cmd_run(args: argparse.Namespace) -> int:
    settings = load_settings()
    lake = Lake(settings.lake, settings.s3_endpoint_url)
    source = args.source or str(sample_source(settings.state_dir, args.events, args.seed))
    with step("extract", source=source, lake=lake.uri):
        extracted, _ = extract(ExtractConfig(source=source, format=args.format), lake,
                               settings.s3_endpoint_url)
    with step("validate"):
        validated = validate_window(lake, ValidationConfig())
    with step("preprocess"):
        key, processed = preprocess_window(lake, PreprocessConfig())
    s, q = processed.summary, validated.report
    rows = [
        ("source", source),
        ("events read / new in lake", f"{extracted.rows_read} / {extracted.rows_written}"),
        ("quarantined (extract + validate)",
         f"{extracted.rows_quarantined} + {q.rows_quarantined} {q.reasons}"),
        ("clean events", str(q.rows_clean)),
        ("near-duplicates removed", str(s["near_duplicates_removed"])),
        ("train / holdout interactions",
         f"{s['train_interactions']} / {s['holdout_interactions']}"),
        ("users x items", f"{s['matrix_shape'][0]} x {s['matrix_shape'][1]}"),
        ("split time", s["split_time"]),
        ("snapshot", lake.url(key)),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k.ljust(width)}  {v}" for k, v in rows))
    return 0
